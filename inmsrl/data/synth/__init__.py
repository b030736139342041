"""Synthetic Slakh-format corpus: procedurally composed songs rendered with a General MIDI SoundFont.

The songs draw their parts from shared pools (grooves, rhythms, figures, programs, registers) so that
different songs can share a timbre, a rhythm or a melody while differing in the rest; each stem's pool
ids are kept in its metadata as hidden attributes for simulated listeners (docs/design.md §7).
"""

from inmsrl.data.synth.corpus import CORPUS_FILE, SynthError, SynthOptions, generate_corpus

__all__ = ["CORPUS_FILE", "SynthError", "SynthOptions", "generate_corpus"]
