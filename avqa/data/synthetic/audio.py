"""The soundtrack of a scene: one synthesised track per source, gated per second, at its loudness, mixed.

A source's tone is its type's timbre (catalog.Sound: partials, band noise, vibrato) at unit RMS; its envelope
is either sustained (flat) or rhythmic (4 notes a second, sharp attack, exponential decay, silent gaps), scaled
to unit RMS as well, so loudness_db alone sets the level while sounding (scene.LOUDNESS_DB: 6-dB steps). The
gate opens and closes only at whole seconds (10-ms ramps avoid clicks). The voiceover is speech-like: a glottal
harmonic series through vowel formants, in syllables with pauses.
"""
from __future__ import annotations

import numpy as np

from avqa.data.synthetic.catalog import BY_NAME, Sound

REFERENCE_RMS = 0.05         # RMS of a 0-dB source while sounding
NOTES_PER_SECOND = 4
ROLL_PER_SECOND = 16
NOTE_LENGTH = 0.8            # share of the note period with sound (rhythmic notes have clear gaps)
RAMP_SECONDS = 0.01
MAX_PARTIAL_HZ = 7500.0      # VGGish's log-mel stops at 7.5 kHz
WAVETABLE_SIZE = 4096
VOWELS = ((730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480), (570, 840, 2410))


def _unit_rms(x: np.ndarray) -> np.ndarray:
    rms = float(np.sqrt(np.mean(x ** 2)))
    return x / rms if rms > 0 else x


def band_noise(n: int, rate: int, band: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / rate)
    spectrum[(freqs < band[0]) | (freqs > band[1])] = 0
    return _unit_rms(np.fft.irfft(spectrum, n))


def _wavetable_lookup(table: np.ndarray, cycles: np.ndarray) -> np.ndarray:
    """Sample a one-period table at phase `cycles` (in periods), with linear interpolation."""
    position = (cycles % 1.0) * len(table)
    index = position.astype(np.int64)
    frac = position - index
    return table[index] * (1 - frac) + table[(index + 1) % len(table)] * frac


def _period(amplitudes: np.ndarray, ratios: np.ndarray, phases: np.ndarray) -> np.ndarray:
    """One period of sum_k a_k sin(2 pi r_k x + phi_k), x in [0, 1), for integer ratios r_k (by inverse FFT)."""
    spectrum = np.zeros(WAVETABLE_SIZE // 2 + 1, dtype=complex)
    np.add.at(spectrum, ratios.astype(int), WAVETABLE_SIZE / 2 * amplitudes * np.exp(1j * (phases - np.pi / 2)))
    return np.fft.irfft(spectrum, WAVETABLE_SIZE)


def tone(sound: Sound, n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """The type's timbre at unit RMS (a wavetable oscillator, so a 20-s track costs milliseconds)."""
    t = np.arange(n) / rate
    vibrato_hz = 5.0
    cycles = sound.f0 * t
    if sound.vibrato:
        cycles -= sound.f0 * sound.vibrato / (2 * np.pi * vibrato_hz) * np.cos(2 * np.pi * vibrato_hz * t)
    step = 2 if sound.odd_only else 1
    ratios = np.asarray(sound.ratios or range(1, step * sound.harmonics + 1, step), dtype=float)
    amplitudes = np.arange(1, len(ratios) + 1, dtype=float) ** -sound.rolloff
    amplitudes[ratios * sound.f0 > min(MAX_PARTIAL_HZ, 0.45 * rate)] = 0
    phases = rng.uniform(0, 2 * np.pi, len(ratios))
    if np.all(ratios == np.round(ratios)):
        out = _wavetable_lookup(_period(amplitudes, ratios, phases), cycles)
    else:  # inharmonic partials (mallets) have no common period: sum them directly (only 3 partials)
        out = sum(a * np.sin(2 * np.pi * r * cycles + p) for a, r, p in zip(amplitudes, ratios, phases) if a)
    out = _unit_rms(out)
    if sound.noise:
        out = np.sqrt(1 - sound.noise) * out + np.sqrt(sound.noise) * band_noise(n, rate, sound.noise_band, rng)
    return out


def envelope(sound: Sound, rhythm: str, n: int, rate: int) -> np.ndarray:
    """Unit-RMS amplitude envelope: flat (sustained) or repeated decaying notes locked to the second grid."""
    if rhythm == "sustained" and not sound.roll:
        return np.ones(n)
    per_second = NOTES_PER_SECOND if rhythm == "rhythmic" else ROLL_PER_SECOND
    period = rate // per_second
    t = np.arange(period) / rate
    note = (1 - np.exp(-t / 0.004)) * np.exp(-t / sound.decay)
    note[t >= NOTE_LENGTH * period / rate] = 0
    note = _unit_rms(note)
    return np.resize(note, n)


def gate(sounding: list[int], n: int, rate: int) -> np.ndarray:
    """Per-sample 0..1: open in the sounding seconds, linear ramps at the switches."""
    per_sample = np.repeat(np.asarray(sounding, dtype=float), rate)[:n]
    per_sample = np.pad(per_sample, (0, n - len(per_sample)), mode="edge")
    ramp = int(RAMP_SECONDS * rate)
    for s in range(1, len(sounding)):
        if sounding[s] != sounding[s - 1]:
            start = s * rate
            rising = np.linspace(0, 1, ramp)
            per_sample[start:start + ramp] = rising if sounding[s] else rising[::-1]
    return per_sample


def instrument_track(source: dict, n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    sound = BY_NAME[source["instrument"]].sound
    level = REFERENCE_RMS * 10 ** (source["loudness_db"] / 20)
    return level * tone(sound, n, rate, rng) * envelope(sound, source["rhythm"], n, rate) \
        * gate(source["sounding"], n, rate)


def voiceover_track(sounding: list[int], loudness_db: float, n: int, rate: int,
                    rng: np.random.Generator) -> np.ndarray:
    """Formant speech: syllables of 0.12-0.3 s, each a vowel on its own pitch, one in five a pause."""
    out = np.zeros(n)
    start = 0
    while start < n:
        length = min(int(rng.uniform(0.12, 0.3) * rate), n - start)
        if rng.random() > 0.2:
            f0 = 120.0 * rng.uniform(0.85, 1.2)
            formants = np.asarray(VOWELS[int(rng.integers(len(VOWELS)))], dtype=float)
            harmonics = np.arange(1, int(4000 // f0) + 1, dtype=float)
            weights = np.exp(-(((harmonics[:, None] * f0 - formants[None, :]) / 120.0) ** 2)).sum(1) + 0.02
            table = _period(weights, harmonics, rng.uniform(0, 2 * np.pi, len(harmonics)))
            syllable = _wavetable_lookup(table, f0 * np.arange(length) / rate)
            out[start:start + length] = syllable * np.hanning(length)
        start += length
    level = REFERENCE_RMS * 10 ** (loudness_db / 20)
    return level * _unit_rms(out) * gate(sounding, n, rate)


def soundtrack(scene: dict, rate: int) -> np.ndarray:
    """The mono mix (float32 in [-1, 1]) of every source of the scene."""
    n = scene["seconds"] * rate
    rng = np.random.default_rng(scene["audio_seed"])
    mix = np.zeros(n)
    for source in scene["objects"] + scene["offscreen"]:
        if any(source["sounding"]):
            mix += instrument_track(source, n, rate, rng)
    if scene["voiceover"]:
        mix += voiceover_track(scene["voiceover_sounding"], scene["voiceover_db"], n, rate, rng)
    return np.clip(mix, -1.0, 1.0).astype(np.float32)
