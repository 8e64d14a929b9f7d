"""The graph of a functional model: the layer calls between its inputs and outputs, in order.

``dl.Model(inputs, outputs)`` hands its symbolic tensors to ``Graph``, which walks the recorded
Nodes (``minidl.layers.symbolic``) back from the outputs, without recursion, and orders them as
Keras' ``map_graph`` does, so that ``model.layers`` and ``model.get_weights()`` come in Keras'
order and Keras weights load unchanged:

    depth(node) = 0 for a node whose outputs nothing in the graph uses,
                  else 1 + the largest depth among the nodes using its outputs
    layers:  by depth, deepest (nearest the inputs) first; ties in the order the walk met them
    running: nodes by depth, deepest first; a node's inputs are always made at a greater depth

A graph's JSON is its layers (``serialize_layer`` entries, Keras' order) and its nodes in the
order they run, each naming its inputs as (layer name, that layer's call number, output number);
``Graph.from_config`` replays those calls on freshly built layers.
"""
from __future__ import annotations

from minidl.layers.input_layer import InputLayer
from minidl.layers.serialization import deserialize_layer, serialize_layer, short_repr
from minidl.layers.symbolic import Node, SymbolicTensor


def _as_list(value, what: str) -> list:
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    for v in values:
        if not isinstance(v, SymbolicTensor):
            raise TypeError(f"Model: {what} must be symbolic tensors (from layers.Input and layers called "
                            f"on them), got {short_repr(v, 80)}")
    return values


class Graph:
    """The nodes from ``inputs`` to ``outputs``, ordered to run and to list.

    Args:
        inputs: symbolic tensors made by ``Input`` (one or a list).
        outputs: symbolic tensors computed from them (one or a list).
    Attributes:
        inputs, outputs: as lists. nodes: the Nodes in running order. layers: every layer,
        InputLayers included, in Keras' order.
    Raises:
        ValueError: an input not made by ``Input``, an output that needs an Input not among
            ``inputs`` ("graph disconnected"), or two layers of one name.
    """

    def __init__(self, inputs, outputs):
        self.inputs = _as_list(inputs, "inputs")
        self.outputs = _as_list(outputs, "outputs")
        for x in self.inputs:
            if not isinstance(x.node.layer, InputLayer):
                raise ValueError(f"Model: inputs must come from layers.Input; {x!r} does not (a model from an "
                                 f"intermediate tensor is not supported)")
        post_order, first_seen = self._walk()
        self.nodes, self.layers = self._order(post_order, first_seen)
        self._check_connected()
        self.absorbed = self._absorbed_pairs()
        names = [layer.name for layer in self.layers]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"Model: layer names must be unique in a model, {', '.join(repeated)} repeats")

    def _walk(self) -> tuple[list[Node], dict]:
        """Every node the outputs need, each after the nodes making its inputs (an explicit stack)."""
        input_nodes = {id(x.node) for x in self.inputs}
        post_order, done, first_seen = [], set(), {}
        for output in self.outputs:
            stack = [(output.node, False)]
            while stack:
                node, expanded = stack.pop()
                if id(node) in done:
                    continue
                if expanded or id(node) in input_nodes or not node.inputs:
                    done.add(id(node))
                    post_order.append(node)
                    first_seen.setdefault(id(node.layer), len(first_seen))
                    continue
                stack.append((node, True))
                stack.extend((parent, False) for parent in reversed(node.parents) if id(parent) not in done)
        for x in self.inputs:  # an input no output uses still belongs to the model, as in Keras
            if id(x.node) not in done:
                done.add(id(x.node))
                post_order.insert(0, x.node)
                first_seen.setdefault(id(x.node.layer), len(first_seen))
        return post_order, first_seen

    def _order(self, post_order: list[Node], first_seen: dict) -> tuple[list[Node], list]:
        in_graph = {id(node) for node in post_order}
        input_nodes = {id(x.node) for x in self.inputs}
        node_depth: dict[int, int] = {}
        layer_depth: dict[int, int] = {}
        for node in reversed(post_order):
            depth = max(node_depth.setdefault(id(node), 0), layer_depth.get(id(node.layer), 0))
            layer_depth[id(node.layer)] = node_depth[id(node)] = depth
            if id(node) in input_nodes:
                continue
            for parent in node.parents:
                if id(parent) in in_graph:
                    node_depth[id(parent)] = max(node_depth.get(id(parent), 0), depth + 1)
        nodes = sorted(post_order, key=lambda n: -node_depth[id(n)])  # stable: walk order within a depth
        layers, seen = [], set()
        for node in sorted(post_order, key=lambda n: (-layer_depth[id(n.layer)], first_seen[id(n.layer)])):
            if id(node.layer) not in seen:
                seen.add(id(node.layer))
                layers.append(node.layer)
        return nodes, layers

    def _check_connected(self) -> None:
        known = {id(x) for x in self.inputs}
        for node in self.nodes:
            if not node.inputs:  # an InputLayer
                if id(node.outputs[0]) not in known:
                    raise ValueError(f"Model: graph disconnected: the outputs need Input '{node.layer.name}', "
                                     f"which is not among the model's inputs")
                continue
            known.update(id(x) for x in node.outputs)

    def _absorbed_pairs(self) -> dict[int, Node]:
        """id(node) -> the node after it that may run both as one op (``layer.absorbs``: a
        MaxPooling2D after a Conv2D): the only use of the node's one output, one input each, no
        call arguments, and the output not one of the model's."""
        uses: dict[int, list[Node]] = {}
        for node in self.nodes:
            for x in node.inputs:
                uses.setdefault(id(x), []).append(node)
        outputs = {id(x) for x in self.outputs}
        pairs = {}
        for node in self.nodes:
            if len(node.inputs) != 1 or len(node.outputs) != 1 or node.kwargs or id(node.outputs[0]) in outputs:
                continue
            users = uses.get(id(node.outputs[0]), [])
            if (len(users) == 1 and hasattr(users[0].layer, "absorbs") and len(users[0].inputs) == 1
                    and not users[0].kwargs and not node.as_list and not users[0].as_list):
                pairs[id(node)] = users[0]
        return pairs

    # --- running ---------------------------------------------------------------------------------
    def run(self, values: list, training: bool | None):
        """The output Tensors for input Tensors ``values`` (one per input, in order)."""
        computed = {id(x): v for x, v in zip(self.inputs, values)}
        done = set()   # nodes run already, inside the node before them
        for node in self.nodes:
            if id(node) in done:
                continue
            after = self.absorbed.get(id(node))
            if after is not None and after.layer.absorbs(node.layer):
                x = computed[id(node.inputs[0])]
                computed[id(after.outputs[0])] = after.layer.call_absorbing(node.layer, x)
                done.add(id(after))
                continue
            if not node.inputs:
                x = node.outputs[0]
                computed[id(x)] = node.layer(computed[id(x)])
                continue
            kwargs = dict(node.kwargs)
            call_training = kwargs.pop("training", training)
            out = node.layer(node.call_structure([computed[id(x)] for x in node.inputs]),
                             training=call_training, **kwargs)
            for x, value in zip(node.outputs, out if node.returns_list else [out]):
                computed[id(x)] = value
        return [computed[id(x)] for x in self.outputs]

    # --- JSON --------------------------------------------------------------------------------------
    def get_config(self, single_input: bool = False, single_output: bool = False) -> dict:
        """``{"layers": [...], "nodes": [...], "input_layers": [...], "output_layers": [...]}``; a
        model of one input (output) writes that one reference, not a list of one, as Keras."""
        where: dict[int, list] = {}   # id(symbolic tensor) -> [layer name, call number, output number]
        calls: dict[int, int] = {}
        nodes = []
        for node in self.nodes:
            number = calls.get(id(node.layer), 0)
            calls[id(node.layer)] = number + 1
            for i, x in enumerate(node.outputs):
                where[id(x)] = [node.layer.name, number, i]
            if node.inputs:
                nodes.append({"layer": node.layer.name, "inputs": [where[id(x)] for x in node.inputs],
                              "as_list": node.as_list, "kwargs": dict(node.kwargs)})
            else:
                nodes.append({"layer": node.layer.name, "inputs": []})
        return {"layers": [serialize_layer(layer) for layer in self.layers], "nodes": nodes,
                "input_layers": where[id(self.inputs[0])] if single_input else [where[id(x)] for x in self.inputs],
                "output_layers": where[id(self.outputs[0])] if single_output
                else [where[id(x)] for x in self.outputs]}

    @staticmethod
    def from_config(config: dict, layers: list | None = None) -> tuple[list, list]:
        """(inputs, outputs) made by replaying the config's nodes on its layers (``layers``:
        the entries rebuilt already, as ``minidl.saving`` does, else rebuilt here); each a
        tensor or a list, as the model was made."""
        if not all(isinstance(config.get(key), list) for key in ("layers", "nodes", "input_layers",
                                                                   "output_layers")):
            raise ValueError("a functional model config needs 'layers', 'nodes', 'input_layers' and "
                             "'output_layers' lists")
        layers = layers if layers is not None else [deserialize_layer(entry) for entry in config["layers"]]
        by_name = {layer.name: layer for layer in layers}
        made: dict[tuple, list] = {}   # (layer name, call number) -> outputs
        calls: dict[str, int] = {}

        def tensor(ref):
            if not (isinstance(ref, list) and len(ref) == 3 and tuple(ref[:2]) in made
                    and isinstance(ref[2], int) and 0 <= ref[2] < len(made[tuple(ref[:2])])):
                raise ValueError(f"a node input {short_repr(ref, 80)} names no output made before it")
            return made[tuple(ref[:2])][ref[2]]

        for entry in config["nodes"]:
            name = entry.get("layer") if isinstance(entry, dict) else None
            if name not in by_name:
                raise ValueError(f"a node names layer {short_repr(name, 80)}, which the config does not hold")
            layer = by_name[name]
            number = calls.get(name, 0)
            calls[name] = number + 1
            if not entry.get("inputs"):
                if not isinstance(layer, InputLayer):
                    raise ValueError(f"node of layer {name!r} has no inputs but is not an InputLayer")
                made[(name, number)] = [layer.output]
                continue
            inputs = [tensor(ref) for ref in entry["inputs"]]
            kwargs = entry.get("kwargs") or {}
            if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
                raise ValueError(f"node of layer {name!r}: kwargs must be a dict, got {short_repr(kwargs, 80)}")
            out = layer(list(inputs) if entry.get("as_list") else inputs[0], **kwargs)
            made[(name, number)] = list(out) if isinstance(out, (list, tuple)) else [out]
        def structure(refs):  # one [name, call, output] stands for a model of one, as Keras writes it
            return tensor(refs) if refs and isinstance(refs[0], str) else [tensor(ref) for ref in refs]
        return structure(config["input_layers"]), structure(config["output_layers"])
