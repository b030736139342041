"""U-Net building blocks of Jansson et al. (2017), the backbone of every model in the paper (§4.3).

Encoder layer: Conv2d 5×5, stride 2, padding 2 → BatchNorm → LeakyReLU(0.2). Each layer maps a size
``n`` to ``ceil(n / 2)``, so 1025 bins × 259 frames become 17 × 5 after six layers. The feature
extractors drop BatchNorm and the activation on their last layer (the linear head follows it).

Decoder layer: ConvTranspose2d 5×5, stride 2 → BatchNorm → LeakyReLU(0.2), with channel dropout
(``Dropout2d``, 0.5) after the first three layers, each output concatenated with the encoder output of
the same size (skip connection). The paper says "each convolution" uses leaky ReLU 0.2 (§4.3) and the
authors' code drops whole channels; Jansson et al.'s ReLU and element-wise dropout remain options
(``decoder_activation="relu"``, ``dropout_kind="element"``).
The transposed convolution doubles the size exactly (``2n``), and the result is cropped at the end
to the size of the matching encoder output: an odd size ``2n - 1`` (1025 bins, 259 frames) round-trips
exactly, and output index ``2i`` stays aligned with the centre of encoder input ``2i`` because both
convolutions pad by 2. The last decoder layer outputs the mask logits: as in Jansson et al., it has no
BatchNorm/activation (a ReLU before the sigmoid would confine the mask to [0.5, 1]); the model applies
the sigmoid.

All blocks take ``(batch, channels, freq, time)`` and work in either memory format.
:func:`fold_batch_norms` prepares a trained model for inference only: each BatchNorm, a per-channel
affine map in eval mode, is folded into the convolution before it, the activations work in place, and
the mask layer's transposed convolution takes its polyphase form (:class:`PolyphaseConvTranspose`).
The outputs are the same up to float rounding; ``bench/search.py`` measures the embedding speed.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

PAPER_CHANNELS = (16, 32, 64, 128, 256, 512)
KERNEL_SIZE = 5
STRIDE = 2
PADDING = 2
LEAKY_SLOPE = 0.2
DROPOUT = 0.5
DROPOUT_LAYERS = 3
DECODER_ACTIVATIONS = ("leaky_relu", "relu")
DROPOUT_KINDS = ("channel", "element")


def encoded_size(size: int, num_layers: int) -> int:
    """Size of one axis after ``num_layers`` encoder layers (each ``ceil(n / 2)``; 1025 → 17 in six)."""
    for _ in range(num_layers):
        size = (size + 2 * PADDING - KERNEL_SIZE) // STRIDE + 1
    return size


class EncoderLayer(nn.Sequential):
    """Conv2d 5×5 stride 2 pad 2, then BatchNorm and LeakyReLU unless ``plain`` (a feature layer)."""

    def __init__(self, in_channels: int, out_channels: int, plain: bool = False,
                 negative_slope: float = LEAKY_SLOPE):
        layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, KERNEL_SIZE, STRIDE, PADDING)]
        if not plain:
            layers += [nn.BatchNorm2d(out_channels), nn.LeakyReLU(negative_slope)]
        super().__init__(*layers)

    def fold_batch_norm(self) -> None:
        """Inference only: fold the BatchNorm into the convolution, activate in place."""
        if len(self) > 1 and isinstance(self[1], nn.BatchNorm2d):
            self[0], self[1] = fuse_conv_bn_eval(self[0], self[1]), nn.Identity()
            self[2].inplace = True


class UNetEncoder(nn.Module):
    """A stack of encoder layers that returns every layer's output (the last one is the bottleneck).

    ``plain_last`` omits BatchNorm and the activation on the last layer, as the paper's feature
    extractors do (§4.3).
    """

    def __init__(self, in_channels: int = 1, channels: Sequence[int] = PAPER_CHANNELS,
                 plain_last: bool = False, negative_slope: float = LEAKY_SLOPE):
        super().__init__()
        if not channels:
            raise ValueError("a U-Net encoder needs at least one layer (channels is empty)")
        self.channels = tuple(int(c) for c in channels)
        ins = (in_channels, *self.channels[:-1])
        last = len(self.channels) - 1
        self.layers = nn.ModuleList(
            EncoderLayer(i, o, plain=plain_last and k == last, negative_slope=negative_slope)
            for k, (i, o) in enumerate(zip(ins, self.channels, strict=True)))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for layer in self.layers:
            x = layer(x)
            outputs.append(x)
        return outputs


def crop_to(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Keep the first ``size`` entries of the last two axes; refuses to grow (that would be a bug)."""
    height, width = size
    if x.shape[-2] < height or x.shape[-1] < width:
        raise ValueError(f"cannot crop {tuple(x.shape[-2:])} to the larger size {(height, width)}")
    return x[..., :height, :width]


class PolyphaseConvTranspose(nn.Module):
    """A decoder's ConvTranspose2d (5×5, stride 2, padding 2, output padding 1) as one 3×3 convolution.

    Output pixel ``(2i + a, 2j + b)`` of the transposed convolution sums input pixels ``(i + 1 - u,
    j + 1 - v)`` for ``u, v`` in 0..2 times kernel taps ``(4 - 2u + a, 4 - 2v + b)`` (those inside the
    5×5 kernel). So a 3×3 convolution with padding 1 and four output channels per channel, one per
    phase ``(a, b)``, followed by :func:`~torch.nn.functional.pixel_shuffle`, gives the same sums. For
    the mask layer (one output channel from many) oneDNN's transposed convolution is slow on the CPU,
    and this form is more than twice as fast at paper size (the wider layers are faster as they are). It
    is an inference-only rewrite of a trained layer, whose parameters keep the transposed layout.
    """

    def __init__(self, conv: nn.ConvTranspose2d):
        super().__init__()
        if (conv.kernel_size, conv.stride, conv.padding, conv.output_padding, conv.dilation, conv.groups) != (
                (KERNEL_SIZE,) * 2, (STRIDE,) * 2, (PADDING,) * 2, (STRIDE - 1,) * 2, (1, 1), 1):
            raise ValueError(f"only the decoder's transposed convolution has a polyphase form here, "
                             f"got {conv}")
        in_channels, out_channels = conv.weight.shape[:2]
        # taps k = 4 - 2u + a: pad the kernel to 6 so that k = 2q + a with q = 2 - u
        taps = F.pad(conv.weight.detach(), (0, 1, 0, 1)).reshape(in_channels, out_channels, 3, 2, 3, 2)
        weight = taps.flip(2, 4).permute(1, 3, 5, 0, 2, 4).reshape(4 * out_channels, in_channels, 3, 3)
        self.weight = nn.Parameter(weight.contiguous(), requires_grad=False)
        bias = conv.bias.detach() if conv.bias is not None else torch.zeros(out_channels)
        self.bias = nn.Parameter(bias.repeat_interleave(4), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(F.conv2d(x, self.weight, self.bias, padding=1), STRIDE)


class DecoderLayer(nn.Module):
    """ConvTranspose2d 5×5 stride 2 (exact doubling), crop to the skip size, then BN → activation →
    dropout. ``final`` keeps only the transposed convolution: the mask-logit layer."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float = 0.0, final: bool = False,
                 activation: str = "leaky_relu", dropout_kind: str = "channel",
                 negative_slope: float = LEAKY_SLOPE):
        super().__init__()
        if activation not in DECODER_ACTIVATIONS:
            raise ValueError(f"decoder activation must be one of {', '.join(DECODER_ACTIVATIONS)}, "
                             f"got {activation!r}")
        if dropout_kind not in DROPOUT_KINDS:
            raise ValueError(f"dropout kind must be one of {', '.join(DROPOUT_KINDS)}, got {dropout_kind!r}")
        self.conv = nn.ConvTranspose2d(in_channels, out_channels, KERNEL_SIZE, STRIDE, PADDING,
                                       output_padding=STRIDE - 1)
        post: list[nn.Module] = []
        if not final:
            post += [nn.BatchNorm2d(out_channels),
                     nn.LeakyReLU(negative_slope) if activation == "leaky_relu" else nn.ReLU()]
            if dropout > 0:
                post.append(nn.Dropout2d(dropout) if dropout_kind == "channel" else nn.Dropout(dropout))
        self.post = nn.Sequential(*post)

    def forward(self, x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
        return self.post(crop_to(self.conv(x), size))

    def fold_batch_norm(self) -> None:
        """Inference only: fold the BatchNorm into the transposed convolution (it commutes with the
        crop: both act per channel), activate in place; the mask layer becomes polyphase."""
        if not len(self.post) and isinstance(self.conv, nn.ConvTranspose2d):
            self.conv = PolyphaseConvTranspose(self.conv)
        if len(self.post) and isinstance(self.post[0], nn.BatchNorm2d):
            self.conv = fuse_conv_bn_eval(self.conv, self.post[0], transpose=True)
            self.post[0] = nn.Identity()
            self.post[1].inplace = True


class UNetDecoder(nn.Module):
    """Mirror of a :class:`UNetEncoder`: bottleneck + skips → mask logits at the input size.

    ``channels`` are the encoder's channels: the decoder reads its widths backwards from them, and
    its input is the last one. Dropout follows the first ``dropout_layers`` layers.
    """

    def __init__(self, channels: Sequence[int] = PAPER_CHANNELS, out_channels: int = 1,
                 dropout: float = DROPOUT, dropout_layers: int = DROPOUT_LAYERS,
                 activation: str = "leaky_relu", dropout_kind: str = "channel",
                 negative_slope: float = LEAKY_SLOPE):
        super().__init__()
        channels = tuple(int(c) for c in channels)
        if not channels:
            raise ValueError("a U-Net decoder needs at least one layer (channels is empty)")
        widths = (*reversed(channels[:-1]), out_channels)  # 256, 128, 64, 32, 16, 1
        layers = []
        in_channels = channels[-1]
        for k, width in enumerate(widths):
            final = k == len(widths) - 1
            layers.append(DecoderLayer(in_channels, width, dropout=dropout if k < dropout_layers else 0.0,
                                       final=final, activation=activation, dropout_kind=dropout_kind,
                                       negative_slope=negative_slope))
            in_channels = 2 * width  # concatenated with the encoder output of the same width
        self.layers = nn.ModuleList(layers)

    def forward(self, bottleneck: torch.Tensor, skips: Sequence[torch.Tensor],
                output_size: Sequence[int]) -> torch.Tensor:
        """``skips`` are the encoder outputs before the bottleneck, shallowest first."""
        if len(skips) != len(self.layers) - 1:
            raise ValueError(f"the decoder has {len(self.layers)} layers and needs "
                             f"{len(self.layers) - 1} skip inputs, got {len(skips)}")
        x = bottleneck
        for layer, skip in zip(self.layers[:-1], reversed(skips), strict=True):
            x = torch.cat([layer(x, skip.shape[-2:]), skip], dim=1)
        return self.layers[-1](x, output_size)


def fold_batch_norms(model: nn.Module) -> nn.Module:
    """``model`` (in eval mode, for inference only: it can no longer be trained) with every U-Net layer's
    BatchNorm folded into its convolution, in-place activations and polyphase mask layers; returned for
    chaining."""
    if model.training:
        raise ValueError("fold BatchNorms of a model in eval mode only (they fold their running statistics)")
    for module in model.modules():
        if isinstance(module, EncoderLayer | DecoderLayer):
            module.fold_batch_norm()
    return model
