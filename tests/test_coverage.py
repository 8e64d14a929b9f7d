"""Registry walks behind two README sentences: "every differentiable piece is checked against
numerical gradients" and "every layer that Keras has is checked against Keras". A new op or
layer fails here until its check exists and is listed below, or it is exempted with a reason.

(a) Every Function subclass defined in minidl (found by importing every module but the apps and
    walking Function.__subclasses__) is a key of GRADIENT_CHECKS, naming the tests that run a
    float64 gradcheck on it, or of NOT_GRADIENT_CHECKED, giving the reason.
(b) Every public layer class in minidl.layers.serialization.LAYERS is a key of KERAS_VALUE_TESTS,
    naming the tests that compare its values with Keras (a fixture Keras wrote, or Keras live),
    or of NOT_IN_KERAS; when Keras is installed, hasattr(keras.layers, name) must agree.

A listed claim is checked against the test sources, so a renamed, deleted or rewritten test
fails too. What a test "reads" is its own code (decorators included), the module-level helpers
and tables of its file that it names, transitively, and the source of any tests/reference script
it imports a name from (where the fixture cases are tabled). A gradient check must read a
``gradcheck(`` call and name the op: its class, or a public function of its module that builds
it. A Keras comparison must read ``keras`` (a live run) or a fixture (``FIXTURES``, ``load...(``)
in its own file, and name the layer.
"""
from __future__ import annotations

import ast
import functools
import importlib
import pathlib
import pkgutil
import re

import pytest

import minidl
from minidl.function import Function
from minidl.layers.serialization import LAYERS

ROOT = pathlib.Path(__file__).resolve().parents[1]

# --- (a) gradient checks ------------------------------------------------------------------------------
ARITHMETIC = "tests/minidl/functional/test_arithmetic.py"
SHAPE = "tests/minidl/functional/test_shape.py"
NORMALIZE = "tests/minidl/functional/test_normalization.py"
GRADIENT_CHECKS: dict[str, tuple[str, ...]] = {
    **{op: (f"{ARITHMETIC}::test_binary_op_broadcasts_like_numpy_and_sums_its_gradient_back",)
       for op in ("Add", "Sub", "Mul", "Div")},
    **{op: (f"{ARITHMETIC}::test_unary_op_value_and_gradient",)
       for op in ("Neg", "Pow", "Exp", "Log", "Sqrt", "Abs", "Clip")},
    "MatMul": (f"{ARITHMETIC}::test_matmul_matches_numpy_and_its_gradient",),
    "Where": (f"{ARITHMETIC}::test_where_takes_a_where_the_condition_holds_and_b_elsewhere",),
    "Cast": (f"{ARITHMETIC}::test_cast_gradient",),
    "Reshape": (f"{SHAPE}::test_reshape",),
    "Transpose": (f"{SHAPE}::test_transpose",),
    "GetItem": (f"{SHAPE}::test_getitem",),
    "Concatenate": (f"{SHAPE}::test_concatenate_and_stack",),
    "Stack": (f"{SHAPE}::test_concatenate_and_stack",),
    "Pad": (f"{SHAPE}::test_pad",),
    **{op: ("tests/minidl/functional/test_reduction.py::test_reduction_value_and_gradient",)
       for op in ("Sum", "Mean", "Max")},
    **{op: ("tests/minidl/functional/test_activation.py::test_elementwise_activation_value_and_gradient",)
       for op in ("Tanh", "Sigmoid", "ReLU", "LeakyReLU", "ELU")},
    **{op: ("tests/minidl/functional/test_activation.py::test_softmax_family_value_and_gradient",)
       for op in ("Softmax", "LogSoftmax")},
    **{op: ("tests/minidl/functional/test_activation.py::test_keras_activation_value_and_gradient",)
       for op in ("GeneralizedReLU", "SELU", "GELU", "SiLU", "Softplus", "Softsign", "HardSigmoid", "HardSiLU",
                  "Mish")},
    "PReLUFunction": ("tests/minidl/functional/test_activation.py::test_prelu_value_and_gradient_with_a_shared_axis",),
    "Affine": ("tests/minidl/functional/test_affine.py::test_affine_value_and_gradient",),
    "Conv2DFunction": ("tests/minidl/functional/test_conv.py::test_conv2d_gradient",
                       "tests/minidl/functional/test_conv.py::test_conv2d_gradient_without_bias"),
    "Conv1DFunction": ("tests/minidl/functional/test_conv.py::test_conv1d_gradient",),
    "DepthwiseConv2DFunction": ("tests/minidl/functional/test_depthwise_conv.py::test_depthwise_conv2d_gradient",
                                "tests/minidl/functional/test_depthwise_conv.py::"
                                "test_depthwise_conv2d_gradient_without_bias"),
    "DepthwiseConv1DFunction": ("tests/minidl/functional/test_depthwise_conv.py::"
                                "test_depthwise_conv1d_is_the_2d_one_on_height_1_and_its_gradient",),
    "Conv2DTransposeFunction": ("tests/minidl/functional/test_conv_transpose.py::test_conv2d_transpose_gradient",),
    "Conv1DTransposeFunction": ("tests/minidl/functional/test_conv_transpose.py::test_conv1d_transpose_gradient",),
    "Conv2DMaxPoolFunction": ("tests/minidl/functional/test_conv_pool.py::test_conv2d_max_pool_gradient",
                              "tests/minidl/functional/test_conv_pool.py::test_conv2d_max_pool_gradient_without_bias"),
    "MaxPool2DFunction": ("tests/minidl/functional/test_pooling.py::test_pool2d_gradient",),
    "AvgPool2DFunction": ("tests/minidl/functional/test_pooling.py::test_pool2d_gradient",),
    "MaxPool1DFunction": ("tests/minidl/functional/test_pooling.py::test_pool1d_gradient",),
    "AvgPool1DFunction": ("tests/minidl/functional/test_pooling.py::test_pool1d_gradient",),
    "BatchNormalizationFunction": (f"{NORMALIZE}::test_batch_normalization_train_gradient",),
    "LayerNormalizationFunction": (f"{NORMALIZE}::test_layer_normalization_gradient",),
    "FixedNormalization": (f"{NORMALIZE}::test_batch_normalization_fixed_gradient",),
    "SparseCrossentropyFromLogits": ("tests/minidl/test_losses.py::test_loss_gradient",),
    "SparseCrossentropy": ("tests/minidl/functional/test_loss.py::test_sparse_crossentropy_on_probabilities_gradient",
                           "tests/minidl/functional/test_loss.py::test_sparse_crossentropy_after_softmax_gradient",
                           "tests/minidl/test_losses.py::test_loss_gradient"),
    "Dropout": ("tests/minidl/functional/test_dropout.py::test_dropout_gradient",),
    "CTCLoss": ("tests/minidl/functional/test_ctc.py::test_gradcheck_true_derivative_wrt_log_probs",
                "tests/minidl/functional/test_ctc.py::test_gradcheck_through_log_softmax"),
    "LSTMFunction": ("tests/minidl/functional/recurrent/test_lstm.py::test_lstm_gradcheck",),
    "GRUFunction": ("tests/minidl/functional/recurrent/test_gru.py::test_gru_gradcheck",),
    "GRUResetBeforeFunction": ("tests/minidl/functional/recurrent/test_gru_reset_before.py::"
                               "test_gru_reset_before_gradcheck",),
    "SimpleRNNFunction": ("tests/minidl/functional/recurrent/test_simple_rnn.py::test_simple_rnn_gradcheck",),
}

# A non-differentiable op (one whose backward returns None for every input) would go here too.
# There is none today: every Function minidl defines is either checked above or a shared base.
NOT_GRADIENT_CHECKED: dict[str, str] = {
    "_Pool2D": "shared base of MaxPool2DFunction and AvgPool2DFunction; no forward of its own",
    "_Normalize": "shared base of BatchNormalizationFunction and LayerNormalizationFunction; "
                  "no forward of its own",
    "RecurrentFunction": "shared base of LSTMFunction, GRUFunction and SimpleRNNFunction (the "
                         "time loop); each cell supplies the step",
}

# --- (b) Keras value tests ----------------------------------------------------------------------------
CORE = "tests/minidl/layers/test_keras_values.py"
CORE_KERAS = (f"{CORE}::test_core_layer_matches_keras_fixture", f"{CORE}::test_core_layers_match_keras_live")
CONV = ("tests/minidl/layers/test_conv.py::test_layer_matches_keras_fixture",
        "tests/minidl/layers/test_conv.py::test_layer_matches_keras_live")
POOLING = ("tests/minidl/layers/test_pooling.py::test_pooling_layer_matches_keras_fixture",
           "tests/minidl/layers/test_pooling.py::test_pooling_layers_match_keras_live")
RECURRENT = ("tests/minidl/layers/test_recurrent.py::test_outputs_equal_keras_fixtures",
             "tests/minidl/layers/test_recurrent.py::test_outputs_equal_live_keras")
OPTIONS = "tests/minidl/layers/test_recurrent_options.py"
RECURRENT_OPTIONS = (f"{OPTIONS}::test_dropout_with_injected_masks_equals_keras_fixture",
                     f"{OPTIONS}::test_dropout_with_injected_masks_equals_live_keras",
                     f"{OPTIONS}::test_stateful_equals_keras_fixture_across_calls_and_reset",
                     f"{OPTIONS}::test_stateful_equals_live_keras_across_calls_and_reset")
NORMALIZATION = ("tests/minidl/layers/test_normalization.py::test_matches_keras_fixture",
                 "tests/minidl/layers/test_normalization.py::test_matches_keras_live")
MERGE = "tests/minidl/layers/test_merge.py"
KERAS_VALUE_TESTS: dict[str, tuple[str, ...]] = {
    "Dense": ("tests/minidl/layers/test_core.py::test_dense_equals_keras_fixture",
              "tests/minidl/layers/test_core.py::test_dense_equals_live_keras"),
    "Activation": CORE_KERAS,
    "Flatten": CORE_KERAS,
    "Reshape": CORE_KERAS,
    "Dropout": CORE_KERAS + (f"{CORE}::test_dropout_training_statistics_match_keras_live",),
    "InputLayer": CORE_KERAS + (f"{CORE}::test_input_layer_refuses_a_sample_shape_keras_refuses_live",),
    "Conv1D": CONV,
    "Conv2D": CONV,
    **{name: ("tests/minidl/layers/test_depthwise_conv.py::test_depthwise_and_separable_layers_match_keras_live",)
       for name in ("DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D")},
    **{name: ("tests/minidl/layers/test_conv_transpose.py::test_layer_matches_keras_live",
              "tests/minidl/layers/test_conv_transpose.py::test_keras_model_imports_and_exports_with_the_same_outputs_live")
       for name in ("Conv1DTranspose", "Conv2DTranspose")},
    "ZeroPadding1D": (CONV[0], f"{CORE}::test_zero_padding_matches_keras_live"),
    "ZeroPadding2D": (CONV[0], f"{CORE}::test_zero_padding_matches_keras_live"),
    **{name: POOLING for name in ("MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D",
                                  "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling1D",
                                  "GlobalMaxPooling2D")},
    "BatchNormalization": NORMALIZATION,
    "LayerNormalization": NORMALIZATION,
    "Normalization": ("tests/minidl/layers/test_normalization.py::test_normalization_adapt_matches_keras_live",),
    "Masking": ("tests/minidl/layers/test_masking.py::test_matches_live_keras",),
    "SimpleRNN": RECURRENT + RECURRENT_OPTIONS,
    "LSTM": RECURRENT + RECURRENT_OPTIONS,
    "GRU": RECURRENT + RECURRENT_OPTIONS,
    "Bidirectional": RECURRENT,
    **{name: ("tests/minidl/layers/test_activations.py::test_activation_layers_match_keras_live",)
       for name in ("ReLU", "LeakyReLU", "ELU", "PReLU")},
    "Softmax": ("tests/minidl/layers/test_activations.py::test_activation_layers_match_keras_live",
                "tests/minidl/layers/test_activations.py::test_softmax_with_a_mask_matches_keras_live"),
    "MultiHeadAttention": ("tests/minidl/layers/test_attention.py::test_multi_head_attention_matches_keras_live",
                           "tests/minidl/layers/test_attention.py::test_the_masks_inputs_carry_match_keras_live"),
    "Embedding": ("tests/minidl/layers/test_embedding.py::test_embedding_and_its_mask_match_keras_live",
                  "tests/minidl/layers/test_embedding.py::test_mask_zero_reaches_an_lstm_as_in_keras_live"),
    **{name: ("tests/minidl/layers/test_reshaping.py::test_reshaping_layers_match_keras_live",)
       for name in ("Permute", "RepeatVector", "UpSampling1D", "Cropping1D", "UpSampling2D", "Cropping2D")},
    "GaussianNoise": ("tests/minidl/layers/test_noise.py::test_noise_layers_are_the_identity_at_inference_as_keras_live",
                      "tests/minidl/layers/test_noise.py::test_gaussian_noise_statistics_as_keras_live"),
    "SpatialDropout1D": (
        "tests/minidl/layers/test_noise.py::test_noise_layers_are_the_identity_at_inference_as_keras_live",
        "tests/minidl/layers/test_noise.py::test_spatial_dropout_drops_whole_channels_as_keras_live"),
    "SpatialDropout2D": (
        "tests/minidl/layers/test_noise.py::test_noise_layers_are_the_identity_at_inference_as_keras_live",
        "tests/minidl/layers/test_noise.py::test_spatial_dropout_2d_drops_whole_feature_maps_as_keras_live"),
    "Lambda": ("tests/minidl/layers/test_lambda_layer.py::test_lambda_matches_keras_live",),
    "TimeDistributed": ("tests/minidl/layers/test_wrappers.py::test_time_distributed_matches_live_keras",),
    **{name: (f"{MERGE}::test_merge_layers_match_keras_live",)
       for name in ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot")},
}

NOT_IN_KERAS: dict[str, str] = {
    "Sequential": "a model (keras.Sequential), not a keras.layers class; it is registered as a layer "
                  "only so that a Sequential may nest in another",
    "Model": "a model (keras.Model), not a keras.layers class; registered as a layer so that a model may "
             "be called inside another; its values are compared with Keras in tests/minidl/test_model.py",
}


# --- walking minidl --------------------------------------------------------------------------------------
def minidl_functions() -> dict[str, type]:
    """Every Function subclass minidl defines, by class name; apps are skipped (they build models
    from layers and define no ops, and importing them needs the audio stack)."""
    for info in pkgutil.walk_packages(minidl.__path__, "minidl."):
        if not info.name.startswith("minidl.apps"):
            importlib.import_module(info.name)
    found: dict[str, type] = {}
    stack = [Function]
    while stack:
        for cls in stack.pop().__subclasses__():
            stack.append(cls)
            if cls.__module__.startswith("minidl."):
                if found.get(cls.__name__, cls) is not cls:
                    raise AssertionError(f"two Functions named {cls.__name__}: {found[cls.__name__]} and {cls}")
                found[cls.__name__] = cls
    return found


def public_layers() -> set[str]:
    """The registered layer names a user or a file can give; _names are shared bases, and classes
    that tests define (and register, as a user would) are not minidl's."""
    minidl_functions()  # imports every module, so every layer class has registered itself
    return {name for name, cls in LAYERS.items() if not name.startswith("_") and cls.__module__.startswith("minidl.")}


@functools.cache
def builders(cls: type) -> frozenset[str]:
    """Names a test may use for a Function: its class name and the public functions of its
    module that name the class, themselves or through the module's private helpers (F.cast for
    Cast; max_pool1d, through _pool, for MaxPool1DFunction)."""
    tree = ast.parse(pathlib.Path(importlib.import_module(cls.__module__).__file__).read_text())
    uses = {node.name: {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
            for node in tree.body if isinstance(node, ast.FunctionDef)}

    def reaches(function: str, seen: set[str]) -> bool:
        seen.add(function)
        return cls.__name__ in uses[function] or any(
            reaches(helper, seen) for helper in uses[function] if helper in uses and helper not in seen)

    return frozenset({cls.__name__} | {f for f in uses if not f.startswith("_") and reaches(f, set())})


# --- reading the tests -------------------------------------------------------------------------------------
@functools.cache
def module_parts(path: str) -> tuple[dict[str, ast.AST], dict[str, str]]:
    """A test file's module-level definitions by name, and the names it imports from modules."""
    file = ROOT / path
    if not file.is_file():
        raise AssertionError(f"{path} does not exist")
    definitions: dict[str, ast.AST] = {}
    imported: dict[str, str] = {}
    for node in ast.parse(file.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            definitions[node.name] = node
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        definitions[name.id] = node
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                imported[alias.asname or alias.name] = node.module
    return definitions, imported


@functools.cache
def what_it_reads(test_id: str) -> tuple[str, str]:
    """(the code in the test's own file that the test reads, that plus the tests/reference scripts
    it imports from), as source text; see the module docstring."""
    path, name = test_id.split("::")
    definitions, imported = module_parts(path)
    if not name.startswith("test") or not isinstance(definitions.get(name), ast.FunctionDef):
        raise AssertionError(f"{test_id}: no test function {name} in {path}")
    own, reference, seen, queue = [], [], set(), [name]
    while queue:
        current = queue.pop()
        if current in seen:
            continue
        seen.add(current)
        if current in definitions:
            node = definitions[current]
            own.append(ast.unparse(node))
            queue.extend(n.id for n in ast.walk(node) if isinstance(n, ast.Name))
        elif imported.get(current, "").startswith("tests.reference."):
            script = ROOT / (imported[current].replace(".", "/") + ".py")
            reference.append(script.read_text())
    own_text = "\n".join(own)
    return own_text, "\n".join([own_text, *sorted(set(reference))])


def names_any(text: str, names) -> bool:
    return any(re.search(rf"\b{re.escape(name)}\b", text) for name in names)


def claim_problems(claims: dict[str, tuple[str, ...]], check) -> list[str]:
    problems = []
    for subject, test_ids in sorted(claims.items()):
        for test_id in test_ids:
            try:
                problem = check(subject, test_id)
            except AssertionError as error:
                problem = str(error)
            if problem:
                problems.append(f"{subject}: {problem}")
    return problems


# --- (a) ------------------------------------------------------------------------------------------------------
def test_every_function_has_a_gradient_check_or_a_reason():
    functions = set(minidl_functions())
    missing = sorted(functions - set(GRADIENT_CHECKS) - set(NOT_GRADIENT_CHECKED))
    assert not missing, (f"Functions without a float64 gradient check: {', '.join(missing)}; add a gradcheck test "
                         "and name it in tests/test_coverage.py GRADIENT_CHECKS (or give a reason in "
                         "NOT_GRADIENT_CHECKED)")
    stale = sorted((set(GRADIENT_CHECKS) | set(NOT_GRADIENT_CHECKED)) - functions)
    assert not stale, f"listed in tests/test_coverage.py but no such Function in minidl: {', '.join(stale)}"
    both = sorted(set(GRADIENT_CHECKS) & set(NOT_GRADIENT_CHECKED))
    assert not both, f"both checked and exempted: {', '.join(both)}"


def test_exempted_functions_are_shared_bases_of_checked_ones():
    functions = minidl_functions()
    for name in NOT_GRADIENT_CHECKED:
        subclasses = [sub.__name__ for sub in functions[name].__subclasses__()]
        assert subclasses and all(sub in GRADIENT_CHECKS for sub in subclasses), \
            f"{name} is exempted as a shared base, but its subclasses {subclasses} are not all gradient-checked"


def test_each_named_gradient_check_calls_gradcheck_on_its_op():
    functions = minidl_functions()

    def check(op: str, test_id: str) -> str | None:
        own, everything = what_it_reads(test_id)
        if not re.search(r"\bgradcheck\(", own):
            return f"{test_id} calls no gradcheck"
        if op in functions and not names_any(everything, builders(functions[op])):
            return f"{test_id} never names {' or '.join(sorted(builders(functions[op])))}"
        return None

    problems = claim_problems(GRADIENT_CHECKS, check)
    assert not problems, "\n".join(problems)


# --- (b) ------------------------------------------------------------------------------------------------------
def test_every_layer_has_a_keras_value_test_or_is_not_in_keras():
    registered = public_layers()
    missing = sorted(registered - set(KERAS_VALUE_TESTS) - set(NOT_IN_KERAS))
    assert not missing, (f"layers without a Keras value test: {', '.join(missing)}; compare them with Keras (a "
                         "tests/reference fixture and/or live) and name the tests in tests/test_coverage.py "
                         "KERAS_VALUE_TESTS (or, if keras.layers has no such class, say so in NOT_IN_KERAS)")
    stale = sorted((set(KERAS_VALUE_TESTS) | set(NOT_IN_KERAS)) - registered)
    assert not stale, f"listed in tests/test_coverage.py but not a registered layer: {', '.join(stale)}"


def test_the_layers_keras_has_are_the_ones_declared():
    keras = pytest.importorskip("keras")
    wrong = sorted(name for name in KERAS_VALUE_TESTS if not hasattr(keras.layers, name))
    assert not wrong, f"keras.layers has no {', '.join(wrong)}: compared with what?"
    wrong = sorted(name for name in NOT_IN_KERAS if hasattr(keras.layers, name))
    assert not wrong, f"keras.layers has {', '.join(wrong)}: it needs a Keras value test, not an exemption"


def test_each_named_keras_test_compares_its_layer_with_keras():
    def check(layer: str, test_id: str) -> str | None:
        own, everything = what_it_reads(test_id)
        if not re.search(r"\bkeras\b|\bFIXTURES\b|\bload\w*\(", own):
            return f"{test_id} uses neither Keras nor a Keras-made fixture"
        if not names_any(everything, [layer]):
            return f"{test_id} never names {layer}"
        return None

    problems = claim_problems(KERAS_VALUE_TESTS, check)
    assert not problems, "\n".join(problems)


# --- docstrings say what is true ---------------------------------------------------------------------------
def test_ctc_docstring_says_rescaled_probabilities_not_log_space():
    from minidl.functional import ctc  # noqa: PLC0415 (one module, for its text)
    source = pathlib.Path(ctc.__file__).read_text()
    assert not re.search(r"log[ -]space", source, re.IGNORECASE)
    assert "rescaled probabilities" in ctc.CTCLoss.__doc__.splitlines()[0]
