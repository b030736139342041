"""Models of the paper: U-Net blocks, separators, feature extractors, Clean/Cascade, Direct family.

Every model takes waveforms and computes its own features; the embedding models share
:class:`~inmsrl.models.base.EmbeddingModel`'s interface (``embed``, ``sources``, ``embedding_dim``,
parameter groups). Build them from a config dict with :func:`~inmsrl.models.config.build_model`.
"""

from inmsrl.models.base import EmbeddingModel, num_parameters
from inmsrl.models.cascade import Cascade, CascadeOutput, Clean
from inmsrl.models.conditioning import Conditioning1D, Conditioning3D, block_masks
from inmsrl.models.config import MODEL_TYPES, ModelConfigError, build_model
from inmsrl.models.direct import Direct, DirectOutput, DirectReconst, DirectReconstOutput, EncoderFeatures
from inmsrl.models.extractor import EmbeddingHead, ExtractorSet, FeatureExtractor
from inmsrl.models.separator import MaskedMagnitude, Separation, Separator, SourceSeparator

__all__ = [
    "MODEL_TYPES", "Cascade", "CascadeOutput", "Clean", "Conditioning1D", "Conditioning3D", "Direct",
    "DirectOutput", "DirectReconst", "DirectReconstOutput", "EmbeddingHead", "EmbeddingModel",
    "EncoderFeatures", "ExtractorSet", "FeatureExtractor", "MaskedMagnitude", "ModelConfigError",
    "Separation", "Separator", "SourceSeparator", "block_masks", "build_model", "num_parameters",
]
