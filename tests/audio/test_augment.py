"""audio.augment: each augmentation does what it says, reproducibly, on a batch too."""

from __future__ import annotations

import numpy as np
import pytest

from audio import augment

RATE = 8000


def _tone(hz: float = 440.0, samples: int = RATE, batch: int | None = None) -> np.ndarray:
    t = np.arange(samples) / RATE
    x = (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)
    return x if batch is None else np.stack([x * (k + 1) / batch for k in range(batch)])


def _snr_db(clean: np.ndarray, noisy: np.ndarray) -> np.ndarray:
    clean, noise = clean.astype(np.float64), noisy.astype(np.float64) - clean
    return 10 * np.log10((clean ** 2).sum(-1) / (noise ** 2).sum(-1))


def _peak_hz(x: np.ndarray) -> float:
    return float(np.argmax(np.abs(np.fft.rfft(x))) * RATE / x.shape[-1])


@pytest.mark.parametrize("snr", [-5.0, 0.0, 10.0, 30.0])
def test_add_noise_has_the_snr_it_says(snr):
    clean = _tone(batch=3)
    noisy = augment.add_noise(clean, snr, rng=np.random.default_rng(0))
    np.testing.assert_allclose(_snr_db(clean, noisy), snr, atol=1e-3)
    assert noisy.dtype == np.float32 and noisy.shape == clean.shape
    babble = np.random.default_rng(1).uniform(-1, 1, size=1234)
    mixed = augment.add_noise(clean[0], snr, noise=babble, rng=np.random.default_rng(2))
    np.testing.assert_allclose(_snr_db(clean[0], mixed), snr, atol=1e-3)


@pytest.mark.parametrize("gain_db", [-12.0, -0.5, 0.0, 6.0])
def test_gain_changes_the_rms_by_its_decibels(gain_db):
    signal = _tone(batch=2)
    louder = augment.gain(signal, gain_db)
    rms = lambda x: np.sqrt((x.astype(np.float64) ** 2).mean(-1))
    np.testing.assert_allclose(20 * np.log10(rms(louder) / rms(signal)), gain_db, atol=1e-5)
    assert louder.dtype == signal.dtype and louder.shape == signal.shape
    with pytest.raises(ValueError, match="gain: gain_db"):
        augment.gain(signal, float("nan"))


@pytest.mark.parametrize("rt60", [0.1, 0.3, 0.6])
def test_a_room_response_decays_60_db_in_its_rt60(rt60):
    response = augment.room_impulse_response(rt60, RATE, np.random.default_rng(0))
    assert response[0] == 1.0 and len(response) == round(rt60 * RATE)
    tail = response[1:] ** 2
    np.testing.assert_allclose(tail.sum(), 1.0)                       # 0 dB direct to reverberant
    # Schroeder's backward integral, in dB; its slope from -5 to -25 dB, times 3, is the RT60
    decay = 10 * np.log10(np.cumsum(tail[::-1])[::-1] / tail.sum())
    t5, t25 = np.argmax(decay < -5) / RATE, np.argmax(decay < -25) / RATE
    assert abs(3 * (t25 - t5) - rt60) < 0.15 * rt60


def test_reverberation_keeps_length_and_rms_and_a_longer_room_rings_longer():
    burst = np.zeros((2, RATE), dtype=np.float32)
    burst[:, :800] = _tone(samples=800) * np.array([[1.0], [0.3]], dtype=np.float32)  # 0.1 s, then silence
    rms = lambda x: np.sqrt((x.astype(np.float64) ** 2).mean(-1))
    tails = []
    for rt60 in (0.1, 0.3, 0.6):
        wet = augment.reverberate(burst, rt60, RATE, np.random.default_rng(1))
        assert wet.shape == burst.shape and wet.dtype == burst.dtype
        np.testing.assert_allclose(rms(wet), rms(burst), rtol=1e-5)
        tails.append(float((wet[0, 1600:].astype(np.float64) ** 2).sum() / (wet[0] ** 2).sum()))
    assert 10 * tails[0] < tails[1] and 10 * tails[1] < tails[2], tails   # energy 0.1 s after the burst
    np.testing.assert_array_equal(augment.reverberate(np.zeros(100, np.float32), 0.2, RATE), np.zeros(100))
    with pytest.raises(ValueError, match="rt60 must be > 0"):
        augment.reverberate(burst, 0.0, RATE)


def test_band_limit_passes_the_band_and_stops_what_is_outside_it():
    seconds = np.arange(RATE) / RATE
    def gain_db(hz, order=4):
        wave = np.stack([np.sin(2 * np.pi * hz * seconds), 0.5 * np.sin(2 * np.pi * hz * seconds)]).astype(np.float32)
        out = augment.band_limit(wave, 300.0, 3400.0, RATE, order=order)
        assert out.shape == wave.shape and out.dtype == wave.dtype
        settled = slice(RATE // 4, None)                        # past the filter's start-up
        return 10 * np.log10((out[:, settled].astype(np.float64) ** 2).mean(-1) / (wave[:, settled] ** 2).mean(-1))
    np.testing.assert_allclose(gain_db(1000.0), 0.0, atol=0.1)  # mid-band: unchanged, each row alike
    np.testing.assert_allclose(gain_db(300.0), -3.0, atol=0.3)  # Butterworth edges are -3 dB
    np.testing.assert_allclose(gain_db(3400.0), -3.0, atol=0.3)
    assert (gain_db(75.0) < -40).all() and (gain_db(3900.0) < -30).all()   # two octaves below; near Nyquist
    assert (gain_db(75.0, order=1) > gain_db(75.0, order=4) + 20).all()    # a gentler roll-off


@pytest.mark.parametrize("low, high, order, message", [(0.0, 3400.0, 4, "low_hz < high_hz"),
                                                       (500.0, 400.0, 4, "low_hz < high_hz"),
                                                       (300.0, 4000.0, 4, "Nyquist frequency of 8000 Hz"),
                                                       (300.0, 3400.0, 0, "order must be an integer"),
                                                       (300.0, 3400.0, 2.0, "order must be an integer")])
def test_band_limit_refuses_edges_outside_the_spectrum(low, high, order, message):
    with pytest.raises(ValueError, match=message):
        augment.band_limit(np.zeros(100, np.float32), low, high, RATE, order=order)


@pytest.mark.parametrize("colour, slope", [("white", 0.0), ("pink", -3.01), ("brown", -6.02)])
def test_coloured_noise_falls_by_its_decibels_per_octave(colour, slope):
    from scipy.signal import welch
    noise = augment.coloured_noise(2 ** 16, colour, np.random.default_rng(0))
    assert noise.shape == (2 ** 16,) and abs(np.sqrt((noise ** 2).mean()) - 1) < 1e-9
    hz, power = welch(noise, fs=RATE, nperseg=1024)
    band = (hz >= 60) & (hz <= 3000)
    fitted = np.polyfit(np.log2(hz[band]), 10 * np.log10(power[band]), 1)[0]   # dB per octave
    assert abs(fitted - slope) < 0.5, fitted
    noisy = augment.add_noise(_tone(), 10.0, noise=noise, rng=np.random.default_rng(1))
    np.testing.assert_allclose(_snr_db(_tone(), noisy), 10.0, atol=1e-3)
    with pytest.raises(ValueError, match="colour must be one of"):
        augment.coloured_noise(100, "blue")


def test_add_noise_is_reproducible_and_rejects_silence():
    clean = _tone()
    a = augment.add_noise(clean, 10, rng=np.random.default_rng(5))
    b = augment.add_noise(clean, 10, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="all zeros"):
        augment.add_noise(np.zeros(100, np.float32), 10, rng=np.random.default_rng(0))
    with pytest.raises(TypeError, match="numpy.random.Generator or None, got int"):
        augment.add_noise(clean, 10, rng=3)


def test_add_noise_at_the_expected_level():
    rng = np.random.default_rng(0)
    signal = np.sin(np.arange(80000) * 0.05).astype(np.float32)
    noisy = augment.add_noise(signal, 10.0, rng=rng, exact=False)
    noise = noisy.astype(np.float64) - signal
    snr = 10 * np.log10(np.mean(signal.astype(np.float64) ** 2) / np.mean(noise ** 2))
    assert abs(snr - 10.0) < 0.1 and noisy.dtype == np.float32
    # sigma from the mean power, times the generator's next standard normals; float64 sum
    sigma = np.sqrt(np.mean(signal.astype(np.float64) ** 2) / 10.0)
    expected = (signal + sigma * np.random.default_rng(0).standard_normal(80000))
    np.testing.assert_array_equal(noisy, expected.astype(np.float32))
    batch = augment.add_noise(np.stack([signal, 0.1 * signal]), 10.0,
                              rng=np.random.default_rng(1), exact=False)
    levels = (batch - np.stack([signal, 0.1 * signal])).std(axis=-1)
    np.testing.assert_allclose(levels[1] / levels[0], 0.1, rtol=0.02)  # each its own level
    with pytest.raises(ValueError, match="exact=False scales white noise"):
        augment.add_noise(signal, 10.0, noise=np.ones(10), rng=rng, exact=False)
    with pytest.raises(ValueError, match="all zeros"):
        augment.add_noise(np.zeros(100, np.float32), 10, rng=rng, exact=False)

def test_time_shift_moves_each_utterance_by_its_own_amount():
    x = np.tile(np.arange(1, 101, dtype=np.float32), (4, 1))
    shifted = augment.time_shift(x, 10, rng=np.random.default_rng(0))
    for row in shifted:
        first = int(np.flatnonzero(row)[0])
        shift = first if row[first] == 1 else -(int(row[0]) - 1)
        np.testing.assert_array_equal(row, np.roll(x[0], shift) * ((np.arange(100) - shift >= 0)
                                                                     & (np.arange(100) - shift < 100)))
        assert abs(shift) <= 10
    rolled = augment.time_shift(x[0], 10, rng=np.random.default_rng(0), roll=True)
    assert sorted(rolled) == sorted(x[0])


def test_speed_perturb_changes_length_and_pitch():
    x = _tone(400.0)
    faster = augment.speed_perturb(x, 1.25)
    assert faster.shape == (6400,) and faster.dtype == np.float32
    assert abs(_peak_hz(faster) - 500.0) < 3
    assert augment.speed_perturb(x, 1.0) is x
    chosen = augment.speed_perturb(x, rng=np.random.default_rng(0), factors=(0.8,))
    assert chosen.shape == (10000,)
    with pytest.raises(ValueError, match="factor must be > 0, got -1"):
        augment.speed_perturb(x, -1)


def test_time_stretch_keeps_pitch_and_level():
    x = _tone(400.0, 2 * RATE)
    slower = augment.time_stretch(x, 0.5)
    assert slower.shape == (4 * RATE,)
    assert abs(_peak_hz(slower) - 400.0) < 3
    middle = slower[RATE:3 * RATE]
    assert 0.7 < np.sqrt(np.mean(middle ** 2)) / np.sqrt(np.mean(x ** 2)) < 1.3


@pytest.mark.parametrize("semitones", [-3.0, 4.0])
def test_pitch_shift_moves_the_peak_and_keeps_the_length(semitones):
    x = _tone(400.0, 2 * RATE, batch=2)
    shifted = augment.pitch_shift(x, semitones)
    assert shifted.shape == x.shape and shifted.dtype == np.float32
    expected = 400.0 * 2 ** (semitones / 12)
    assert abs(_peak_hz(shifted[1, RATE // 2:3 * RATE // 2]) - expected) < 8
    drawn = augment.pitch_shift(x[0], rng=np.random.default_rng(0))
    np.testing.assert_array_equal(drawn, augment.pitch_shift(x[0], rng=np.random.default_rng(0)))


def test_spec_augment_masks_bands_per_utterance():
    features = np.ones((3, 50, 13), np.float32)
    masked = augment.spec_augment(features, np.random.default_rng(0), num_time_masks=1,
                                  max_time_width=8, num_freq_masks=1, max_freq_width=3)
    assert masked.shape == features.shape and np.all(features == 1)  # input untouched
    for utterance in masked:
        zero_rows = np.flatnonzero((utterance == 0).all(axis=1))
        zero_cols = np.flatnonzero((utterance == 0).all(axis=0))
        assert len(zero_rows) <= 8 and len(zero_cols) <= 3
        if len(zero_rows):
            assert np.all(np.diff(zero_rows) == 1)  # one contiguous band
        others = np.delete(np.delete(utterance, zero_rows, 0), zero_cols, 1)
        assert np.all(others == 1)
    means = augment.spec_augment(np.arange(20.0).reshape(4, 5), np.random.default_rng(1),
                                 max_time_width=4, max_freq_width=4, value=None)
    assert set(np.unique(means)) <= set(np.arange(20.0)) | {9.5}
    again = augment.spec_augment(features, np.random.default_rng(0), num_time_masks=1,
                                 max_time_width=8, num_freq_masks=1, max_freq_width=3)
    np.testing.assert_array_equal(masked, again)
