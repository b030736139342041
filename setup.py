"""Installs the ``inmsrl`` package and its ``inmsrl`` console script.

The pinned environment (torch/torchaudio pair, museval, SoundFont renderer, ...) is built by
``tools/install.sh`` from ``tools/requirements.txt``; ``install_requires`` only states the ranges the
code needs so that the package can also be installed into an environment a user already has.
"""

from pathlib import Path

from setuptools import find_packages, setup

version = {}
exec((Path(__file__).parent / "inmsrl" / "version.py").read_text(), version)

setup(
    name="inmsrl",
    version=version["__version__"],
    description=(
        "Music similarity representation learning focused on individual instruments: "
        "source separation, per-instrument embeddings, perception-aware fine-tuning, recipes."
    ),
    long_description=(Path(__file__).parent / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["inmsrl", "inmsrl.*"]),
    install_requires=[
        "torch>=2.4",
        "torchaudio>=2.4",
        "soundfile>=0.12",
        "numpy>=1.24",
        "scipy>=1.10",
        "pyyaml>=6.0",
        "museval>=0.4",
        "musdb>=0.4",
        "scikit-learn>=1.3",
        "matplotlib>=3.7",
        "tqdm>=4.65",
        "tensorboard>=2.14",
        "pretty_midi>=0.2.10",
        "faiss-cpu>=1.8",
        "numba>=0.59",
    ],
    entry_points={"console_scripts": ["inmsrl=inmsrl.bin.main:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Multimedia :: Sound/Audio :: Analysis",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
