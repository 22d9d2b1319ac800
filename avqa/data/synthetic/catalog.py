"""The look and sound of each instrument type in the synthetic dataset.

Every type gets its own saturated colour, shape and size (random CLIP features separate objects by colour far
better than by shape, see ../shared/design.md) and its own sound: a fundamental no other type shares, a harmonic recipe
(bowed / reed / brass / plucked / keys / percussion ...) and, for some, band noise. The first 8 types are the
default subset: their colours are the 8 of a candidate palette with the largest smallest pairwise RGB distance
(119) among those at least 100 away from every background colour (brown room, blue sky, green grass); the
other 14 reuse colour families with other shapes.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Look:
    colour: tuple[int, int, int]   # RGB, saturated
    shape: str                     # a name in render.SHAPES
    width: float                   # fraction of one position slot (a third of the centre square), <= 0.88
    height: float                  # fraction of the centre square's side


@dataclass(frozen=True)
class Sound:
    f0: float                      # fundamental (Hz); unique per type ("lowest" is well defined). The default 8
                                   # are >= 4 semitones apart and mostly above VGGish's 125-Hz mel floor:
                                   # random-VGGish probes of "which types sound" gained 3 points an octave up.
    harmonics: int = 8             # number of partials
    rolloff: float = 1.0           # partial n has amplitude n ** -rolloff
    odd_only: bool = False         # clarinet-like spectra
    ratios: tuple[float, ...] = () # inharmonic partial ratios (mallets); overrides harmonics
    noise: float = 0.0             # share of band noise in the tone (breath, reed buzz, drum skin)
    noise_band: tuple[float, float] = (1000.0, 4000.0)
    vibrato: float = 0.0           # relative depth of a 5 Hz pitch vibrato (bowed strings)
    decay: float = 0.08            # note decay time constant (s) of rhythmic notes; short = plucked/struck
    roll: bool = False             # percussion: "sustained" is a fast roll instead of a held tone


@dataclass(frozen=True)
class Instrument:
    name: str
    look: Look
    sound: Sound


# Order = preference: `--instruments N` uses the first N.
CATALOG: tuple[Instrument, ...] = (
    Instrument("violin", Look((220, 20, 20), "ellipse", 0.75, 0.42), Sound(1046.0, 10, 1.0, vibrato=0.006)),
    Instrument("piano", Look((250, 250, 250), "table", 0.88, 0.36), Sound(523.0, 8, 1.6, decay=0.05)),
    Instrument("cello", Look((255, 140, 0), "figure8", 0.80, 0.62), Sound(247.0, 12, 0.9, vibrato=0.005)),
    Instrument("flute", Look((0, 230, 230), "hbar", 0.88, 0.24),
               Sound(1397.0, 3, 2.0, noise=0.25, noise_band=(2000.0, 6000.0))),
    Instrument("trumpet", Look((150, 255, 0), "triangle", 0.85, 0.40), Sound(831.0, 12, 0.6)),
    Instrument("acoustic_guitar", Look((235, 0, 200), "hourglass", 0.80, 0.55),
               Sound(370.0, 10, 1.3, decay=0.04)),
    Instrument("drum", Look((0, 0, 120), "ring", 0.85, 0.36),
               Sound(110.0, 2, 2.0, noise=0.6, noise_band=(150.0, 2000.0), decay=0.05, roll=True)),
    Instrument("accordion", Look((20, 40, 230), "plus", 0.85, 0.45), Sound(659.0, 9, 1.0, odd_only=True)),
    Instrument("saxophone", Look((250, 230, 0), "diamond", 0.75, 0.50),
               Sound(233.0, 10, 0.9, noise=0.08, noise_band=(1500.0, 5000.0))),
    Instrument("clarinet", Look((0, 0, 170), "vbar", 0.55, 0.60), Sound(311.0, 11, 1.1, odd_only=True)),
    Instrument("erhu", Look((255, 105, 180), "vbar", 0.50, 0.65), Sound(494.0, 10, 1.1, vibrato=0.012)),
    Instrument("ukulele", Look((150, 255, 0), "hourglass", 0.65, 0.35), Sound(392.0, 6, 1.4, decay=0.035)),
    Instrument("tuba", Look((190, 150, 0), "circle", 0.85, 0.50), Sound(87.0, 8, 1.2)),
    Instrument("bassoon", Look((120, 0, 0), "vbar", 0.55, 0.62),
               Sound(117.0, 12, 0.8, odd_only=True, noise=0.05, noise_band=(500.0, 2500.0))),
    Instrument("banjo", Look((200, 200, 200), "ring", 0.70, 0.45), Sound(349.0, 12, 0.9, decay=0.03)),
    Instrument("guzheng", Look((255, 60, 60), "trapezoid", 0.88, 0.28), Sound(220.0, 8, 1.2, decay=0.06)),
    Instrument("pipa", Look((255, 170, 120), "ellipse", 0.6, 0.60), Sound(277.0, 8, 1.2, decay=0.03)),
    Instrument("suona", Look((255, 255, 120), "triangle", 0.65, 0.55),
               Sound(587.0, 14, 0.5, noise=0.12, noise_band=(2500.0, 7000.0))),
    Instrument("xylophone", Look((0, 120, 120), "trapezoid", 0.88, 0.40),
               Sound(784.0, ratios=(1.0, 3.93, 9.54), rolloff=1.5, decay=0.04)),
    Instrument("bagpipe", Look((120, 0, 200), "semicircle", 0.85, 0.45),
               Sound(466.0, 12, 0.7, noise=0.1, noise_band=(1000.0, 4000.0))),
    Instrument("electric_bass", Look((15, 15, 15), "hbar", 0.88, 0.30), Sound(62.0, 10, 1.1, decay=0.06)),
    Instrument("congas", Look((255, 90, 0), "ring", 0.65, 0.55),
               Sound(180.0, 2, 2.0, noise=0.5, noise_band=(200.0, 2500.0), decay=0.04, roll=True)),
)
BY_NAME: dict[str, Instrument] = {inst.name: inst for inst in CATALOG}
DEFAULT_N_INSTRUMENTS = 8


def instrument_names(n: int) -> list[str]:
    """The first n catalogue types (the subset a dataset uses)."""
    if not 2 <= n <= len(CATALOG):
        raise ValueError(f"instruments must be between 2 and {len(CATALOG)}, got {n}")
    return [inst.name for inst in CATALOG[:n]]
