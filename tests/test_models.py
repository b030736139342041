"""The models of docs/design.md §4: shapes for real segment lengths, the paper's layer list, conditioning,
parameter groups, CUDA-readiness checks that run on a CPU, and the config builder.

Most tests use tiny channel widths (the STFT sizes are the real ones, so every crop/pad path runs);
paper-size models appear only where a paper-size shape or layer list is the point.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from inmsrl.audio.features import MEL_SCALES, LogMel, Spectrogram, empty_mel_bands, num_frames
from inmsrl.models import (
    Cascade,
    Clean,
    Conditioning1D,
    Conditioning3D,
    Direct,
    DirectReconst,
    FeatureExtractor,
    ModelConfigError,
    Separator,
    SourceSeparator,
    build_model,
    num_parameters,
)
from inmsrl.models.unet import (
    DecoderLayer,
    PolyphaseConvTranspose,
    UNetDecoder,
    UNetEncoder,
    encoded_size,
    fold_batch_norms,
)

SLAKH = ["drums", "bass", "piano", "guitar", "residuals"]
MUSDB = ["vocals", "drums", "bass", "other"]
TINY = [4, 8, 8, 16, 16, 32]
TINY_DIM = 8
TINY_DIRECT = [4, 8, 8, 16, 16, 5 * TINY_DIM]
# duration (s) → (samples at 44.1 kHz, STFT frames at hop 512, centred)
SEGMENTS = {3: (132_300, 259), 5: (220_500, 431), 10: (441_000, 862)}
BINS = 1025


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)


def tiny(kind: str, sources=SLAKH, **extra) -> nn.Module:
    channels = TINY_DIRECT if kind.startswith("direct") else TINY
    cfg = {"type": kind, "unet": {"channels": channels}, **extra}
    if kind in ("clean", "cascade", "direct", "direct_reconst"):
        cfg["embedding_dim"] = TINY_DIM
    return build_model(cfg, sources)


# --- features ---------------------------------------------------------------------------------

@pytest.mark.parametrize("seconds", sorted(SEGMENTS))
def test_stft_sizes_of_the_paper_segments(seconds):
    samples, frames = SEGMENTS[seconds]
    assert num_frames(samples) == frames
    magnitude = Spectrogram()(torch.randn(2, samples))
    assert magnitude.shape == (2, BINS, frames)
    assert LogMel()(magnitude).shape == (2, 259, frames)


def test_slaney_mel_has_no_empty_band_but_htk_has_one():
    """Why the toolkit uses the Slaney scale: 259 HTK bands over 1025 bins leave one filter empty."""
    assert empty_mel_bands(259, mel_scale="slaney") == 0
    assert empty_mel_bands(259, mel_scale="htk") == 1


def test_log_mel_is_finite_on_silence_and_grows_with_level_without_standardisation():
    for scale in MEL_SCALES:
        log_mel = LogMel(scale=scale, standardize=False)
        assert torch.isfinite(log_mel(torch.zeros(1, BINS, 5))).all()
        magnitude = torch.rand(1, BINS, 5) + 0.1
        assert (log_mel(2 * magnitude) > log_mel(magnitude)).all()


def test_extractor_input_is_unchanged_by_a_gain():
    """The authors' input (dB of the mel magnitude, standardised per example): a ×0.25 gain of the
    waveform moves no input value, where the natural log of the mel power shifts every value."""
    waveform = torch.randn(2, 44100) * 0.3
    magnitude, quieter = Spectrogram()(waveform), Spectrogram()(0.25 * waveform)
    default = LogMel()
    assert (default.scale, default.standardize) == ("db", True)
    torch.testing.assert_close(default(quieter), default(magnitude), atol=1e-4, rtol=0)
    features = default(magnitude)
    torch.testing.assert_close(features.mean(dim=(-2, -1)), torch.zeros(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(features.std(dim=(-2, -1), correction=0), torch.ones(2), atol=1e-4, rtol=0)
    legacy = LogMel(scale="log_power", standardize=False)
    shift = legacy(magnitude) - legacy(quieter)
    assert abs(shift.median().item() - 2 * math.log(4)) < 1e-3  # every value moves by ln 16


def test_silent_input_standardises_to_zeros():
    assert LogMel()(torch.zeros(1, BINS, 5)).abs().max() == 0


def test_features_stay_float32_under_bf16_autocast():
    with torch.autocast("cpu", dtype=torch.bfloat16):
        magnitude = Spectrogram()(torch.randn(1, 22050))
        log_mel = LogMel()(magnitude)
    assert magnitude.dtype == log_mel.dtype == torch.float32


# --- U-Net shapes -----------------------------------------------------------------------------

def test_encoder_sizes_match_the_paper_bottleneck():
    assert encoded_size(BINS, 6) == 17
    assert encoded_size(259, 6) == 5  # 3 s frames, and 259 mel bands


@pytest.mark.parametrize("size", [(BINS, 259), (BINS, 431), (BINS, 862), (BINS, 429), (7, 3), (8, 1),
                                  (64, 64)])
def test_unet_round_trips_odd_and_even_sizes_exactly(size):
    # eval: BatchNorm cannot train on the 1 × 1 bottleneck of the smallest inputs
    encoder, decoder = UNetEncoder(1, TINY).eval(), UNetDecoder(TINY).eval()
    x = torch.randn(1, 1, *size)
    *skips, bottleneck = encoder(x)
    assert decoder(bottleneck, skips, x.shape[-2:]).shape == x.shape


def test_decoder_crop_keeps_output_2i_aligned_with_input_i():
    """A centred delta kernel must put input i at output 2i: the crop drops the end, not the start."""
    layer = DecoderLayer(1, 1, final=True)
    with torch.no_grad():
        layer.conv.weight.zero_()
        layer.conv.weight[0, 0, 2, 2] = 1.0
        layer.conv.bias.zero_()
        x = torch.randn(1, 1, 5, 4)
        y = layer(x, (9, 7))  # odd sizes 2n - 1
    assert y.shape[-2:] == (9, 7)
    assert torch.equal(y[..., ::2, ::2], x)
    assert (y[..., 1::2, :] == 0).all() and (y[..., :, 1::2] == 0).all()


@pytest.mark.parametrize("seconds", sorted(SEGMENTS))
def test_separator_output_has_the_input_shape(seconds):
    samples, frames = SEGMENTS[seconds]
    model = tiny("separator", target_sources=["bass", "drums"]).eval()
    with torch.no_grad():
        out = model(torch.randn(2, samples))
    assert out.mixture_magnitude.shape == (2, BINS, frames)
    assert out.magnitudes.shape == out.masks.shape == (2, 2, BINS, frames)
    assert ((out.masks >= 0) & (out.masks <= 1)).all()
    torch.testing.assert_close(out.magnitudes, out.masks * out.mixture_magnitude.unsqueeze(1))


@pytest.mark.parametrize("seconds", sorted(SEGMENTS))
def test_extractor_embeds_any_segment_length_to_one_vector(seconds):
    samples, frames = SEGMENTS[seconds]
    extractor = FeatureExtractor(TINY, embedding_dim=128).eval()
    with torch.no_grad():
        assert extractor(torch.rand(2, BINS, frames)).shape == (2, 128)


@pytest.mark.parametrize("seconds", sorted(SEGMENTS))
def test_direct_family_shapes(seconds):
    samples, frames = SEGMENTS[seconds]
    model = tiny("direct_reconst").eval()
    with torch.no_grad():
        out = model(torch.randn(1, samples))
    assert out.embedding.shape == (1, 5 * TINY_DIM)
    assert out.reconstructions.shape == out.masks.shape == (1, 5, BINS, frames)
    assert model.embed(torch.randn(1, samples)).shape == (1, 5, TINY_DIM)


def test_paper_size_shapes_for_a_3s_segment():
    samples, frames = SEGMENTS[3]
    mixture = torch.randn(1, samples)
    with torch.no_grad():
        direct = Direct(SLAKH).eval()(mixture)
        assert direct.features.bottleneck.shape == (1, 640, 17, 5)
        assert direct.embedding.shape == (1, 640)
        separated = Separator().eval()(torch.rand(1, BINS, frames))
        assert separated.magnitude.shape == (1, BINS, frames)
        assert FeatureExtractor().eval()(separated.magnitude).shape == (1, 128)


# --- the paper's layer list (docs/design.md §4) ----------------------------------------------------

def layer_list(module: nn.Module) -> list[tuple]:
    """The network layers in registration (= forward) order, as comparable tuples."""
    described = []
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            described.append(("conv", m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding))
        elif isinstance(m, nn.ConvTranspose2d):
            described.append(("deconv", m.in_channels, m.out_channels, m.kernel_size, m.stride))
        elif isinstance(m, nn.BatchNorm2d):
            described.append(("bn", m.num_features))
        elif isinstance(m, nn.LeakyReLU):
            described.append(("lrelu", m.negative_slope))
        elif isinstance(m, nn.ReLU):
            described.append(("relu",))
        elif isinstance(m, nn.Dropout2d):
            described.append(("dropout2d", m.p))
        elif isinstance(m, nn.Dropout):
            described.append(("dropout", m.p))
        elif isinstance(m, nn.Sigmoid):
            described.append(("sigmoid",))
        elif isinstance(m, nn.Linear):
            described.append(("linear", m.in_features, m.out_features))
    return described


def paper_encoder(widths, plain_last):
    layers, previous = [], 1
    for k, width in enumerate(widths):
        layers.append(("conv", previous, width, (5, 5), (2, 2), (2, 2)))
        if not (plain_last and k == len(widths) - 1):
            layers += [("bn", width), ("lrelu", 0.2)]
        previous = width
    return layers


def paper_decoder(bottleneck):
    """Paper §4.3 ("each convolution" with leaky ReLU 0.2) and the authors' code (channel dropout)."""
    return [("deconv", bottleneck, 256, (5, 5), (2, 2)), ("bn", 256), ("lrelu", 0.2), ("dropout2d", 0.5),
            ("deconv", 512, 128, (5, 5), (2, 2)), ("bn", 128), ("lrelu", 0.2), ("dropout2d", 0.5),
            ("deconv", 256, 64, (5, 5), (2, 2)), ("bn", 64), ("lrelu", 0.2), ("dropout2d", 0.5),
            ("deconv", 128, 32, (5, 5), (2, 2)), ("bn", 32), ("lrelu", 0.2),
            ("deconv", 64, 16, (5, 5), (2, 2)), ("bn", 16), ("lrelu", 0.2),
            ("deconv", 32, 1, (5, 5), (2, 2))]


def test_separator_layers_are_the_jansson_unet():
    expected = paper_encoder([16, 32, 64, 128, 256, 512], plain_last=False) + paper_decoder(512)
    assert layer_list(Separator()) == expected + [("sigmoid",)]


def test_extractor_layers_end_with_a_plain_conv_and_a_linear_to_128():
    expected = paper_encoder([16, 32, 64, 128, 256, 512], plain_last=True) + [("linear", 512 * 5, 128)]
    assert layer_list(FeatureExtractor()) == expected


def test_direct_layers_and_reconstruction_decoders():
    direct_encoder = paper_encoder([16, 32, 64, 128, 256, 640], plain_last=True)
    assert layer_list(Direct(SLAKH)) == direct_encoder + [("linear", 640 * 17, 640)]
    reconst = DirectReconst(SLAKH)
    assert layer_list(reconst.encoder) + layer_list(reconst.head) == layer_list(Direct(SLAKH))
    assert list(reconst.decoders) == SLAKH
    for decoder in reconst.decoders.values():
        assert layer_list(decoder) == paper_decoder(640)


# --- conditioning -----------------------------------------------------------------------------

def test_conditioning1d_zeroes_exactly_the_other_sources_dimensions():
    conditioning = Conditioning1D(num_sources=5, block_size=128)
    embedding = torch.randn(3, 640).abs() + 1  # no zero components to begin with
    targets = torch.tensor([0, 2, 4])
    masked = conditioning(embedding, targets)
    for row, target in enumerate(targets.tolist()):
        kept = torch.zeros(640, dtype=torch.bool)
        kept[128 * target:128 * (target + 1)] = True
        assert torch.equal(masked[row, kept], embedding[row, kept])
        assert (masked[row, ~kept] == 0).all()
    assert torch.equal(conditioning(embedding, 1), conditioning(embedding, torch.tensor([1, 1, 1])))
    with pytest.raises(ValueError, match="out of range"):
        conditioning(embedding, 5)


def test_conditioning3d_zeroes_exactly_the_other_sources_bottleneck_channels():
    conditioning = Conditioning3D(num_sources=4, block_size=3)
    features = torch.randn(2, 12, 5, 7).abs() + 1
    masked = conditioning(features, torch.tensor([1, 3]))
    assert (masked[0, 3:6] == features[0, 3:6]).all() and (masked[0, :3] == 0).all()
    assert (masked[0, 6:] == 0).all()
    assert (masked[1, 9:] == features[1, 9:]).all() and (masked[1, :9] == 0).all()


def test_decoder_k_ignores_bottleneck_channels_outside_block_k():
    model = tiny("direct_reconst").eval()
    block = TINY_DIRECT[-1] // 5
    with torch.no_grad():
        magnitude = model.spectrogram(torch.randn(1, SEGMENTS[3][0]))
        features = model.encode(magnitude)
        for k in range(5):
            outside = torch.ones(features.bottleneck.shape[1], dtype=torch.bool)
            outside[block * k:block * (k + 1)] = False
            perturbed = features.bottleneck.clone()
            perturbed[:, outside] += 100 * torch.randn_like(perturbed[:, outside])
            reference = model.decode(features, magnitude, k).magnitude
            moved_outside = model.decode(features._replace(bottleneck=perturbed), magnitude, k).magnitude
            assert torch.equal(reference, moved_outside)
            inside = features.bottleneck.clone()
            inside[:, ~outside] += 100 * torch.randn_like(inside[:, ~outside])
            moved_inside = model.decode(features._replace(bottleneck=inside), magnitude, k).magnitude
            assert not torch.equal(reference, moved_inside)


# --- the embedding interface ------------------------------------------------------------------

def test_clean_embeds_each_stem_with_its_own_extractor():
    model = tiny("clean", target_sources=["drums", "bass", "piano", "guitar"]).eval()
    assert model.sources == ("drums", "bass", "piano", "guitar") and model.embedding_dim == TINY_DIM
    stems = torch.randn(2, 5, 22050)
    with torch.no_grad():
        reference = model.embed(stems)
        assert reference.shape == (2, 4, TINY_DIM)
        residuals_changed = stems.clone()
        residuals_changed[:, 4] = torch.randn(2, 22050)
        assert torch.equal(model.embed(residuals_changed), reference)  # residuals is not embedded
        bass_changed = stems.clone()
        bass_changed[:, 1] = torch.randn(2, 22050)
        moved = (model.embed(bass_changed) != reference).any(dim=(0, 2))
    assert moved.tolist() == [False, True, False, False]
    with pytest.raises(ValueError, match="one stem per data-directory source"):
        model.embed(stems[:, :4])


@pytest.mark.parametrize("kind", ["clean", "cascade", "direct", "direct_reconst"])
def test_embedding_a_subset_of_sources_gives_their_columns_of_the_full_embedding(kind):
    model = tiny(kind).eval()
    x = torch.randn(2, 5, 22050) if model.takes_stems else torch.randn(2, 22050)
    with torch.no_grad():
        full = model.embed(x)
        torch.testing.assert_close(model.embed(x, ["guitar", "drums"]), full[:, [3, 0]])
    with pytest.raises(ValueError, match="does not embed 'vocals'"):
        model.embed(x, ["vocals"])


def test_cascade_returns_separations_for_the_auxiliary_loss_and_trains_end_to_end():
    model = tiny("cascade", target_sources=["guitar", "drums"]).train()
    mixture, stems = torch.randn(2, 22050), torch.randn(2, 5, 22050)
    out = model(mixture)
    assert out.embeddings.shape == (2, 2, TINY_DIM)
    targets = model.target_magnitudes(stems)
    assert targets.shape == out.separation.magnitudes.shape == (2, 2, BINS, num_frames(22050))
    torch.testing.assert_close(targets[:, 0], model.separator.magnitude(stems[:, 3]))  # guitar
    out.embeddings.square().sum().backward()  # E2E-FT: the triplet loss reaches the separators
    assert all(p.grad is not None for p in model.separation_parameters())


def test_parameter_groups_split_extractors_from_separation():
    for kind, extractor_prefixes in [("cascade", ("extractors.",)), ("direct_reconst", ("encoder.", "head.")),
                                     ("clean", ("extractors.",)), ("direct", ("encoder.", "head."))]:
        model = tiny(kind)
        groups = model.parameter_groups()
        names = {id(p): n for n, p in model.named_parameters()}
        extractor = [names[id(p)] for p in groups["extractor"]]
        separation = [names[id(p)] for p in groups["separation"]]
        assert sorted(extractor + separation) == sorted(names.values()), kind  # each exactly once
        assert extractor and all(n.startswith(extractor_prefixes) for n in extractor), kind
        assert not any(n.startswith(extractor_prefixes) for n in separation), kind
        assert bool(separation) == (kind in ("cascade", "direct_reconst")), kind


def test_paft_step_on_extractor_group_leaves_separators_untouched():
    model = tiny("cascade").train()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.Adam(model.parameter_groups()["extractor"], lr=1e-2)
    model(torch.randn(2, 22050)).embeddings.square().sum().backward()
    optimizer.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all(n.startswith("extractors.") for n in changed)


def test_sources_come_from_the_data_directory_not_slakh():
    direct = tiny("direct", sources=MUSDB, unet={"channels": [4, 8, 8, 16, 16, 4 * TINY_DIM]})
    assert direct.sources == tuple(MUSDB)
    assert direct.embed(torch.randn(1, 22050)).shape == (1, 4, TINY_DIM)
    assert Direct(MUSDB).encoder.channels[-1] == 4 * 128  # paper default: one 128-channel block per source
    cascade = tiny("cascade", sources=MUSDB)
    assert cascade.sources == tuple(MUSDB)


def test_direct_checkpoint_loads_into_direct_reconst():
    direct = tiny("direct")
    reconst = tiny("direct_reconst")
    result = reconst.load_state_dict(direct.state_dict(), strict=False)
    assert not result.unexpected_keys
    assert result.missing_keys and all(k.startswith("decoders.") for k in result.missing_keys)
    with torch.no_grad():
        mixture = torch.randn(1, 22050)
        torch.testing.assert_close(reconst.eval().embed(mixture), direct.eval().embed(mixture))


def test_trained_separators_load_into_a_cascade_by_name():
    mss = tiny("separator")
    cascade = tiny("cascade", target_sources=["piano", "bass"])
    cascade.separator.load_separators(mss)
    for name in ("piano", "bass"):
        for a, b in zip(cascade.separator.separators[name].parameters(), mss.separators[name].parameters(),
                        strict=True):
            assert torch.equal(a, b)
    with pytest.raises(ValueError, match="no separator for piano"):
        cascade.separator.load_separators(tiny("separator", target_sources=["bass"]))


# --- CUDA readiness, checked on the CPU -------------------------------------------------------

@pytest.mark.parametrize("kind", ["separator", "clean", "cascade", "direct", "direct_reconst"])
def test_every_model_runs_under_bf16_autocast(kind):
    model = tiny(kind).train()
    # 1.5 s: the CPU's bf16 convolution returns garbage for inputs 2 frames wide or less (seen with
    # torch 2.14: a 5×5, stride-2 conv on a (16, 9, 2) map), which a shorter clip reaches in layer six.
    x = torch.randn(2, 5, 66150) if kind == "clean" else torch.randn(2, 66150)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
        loss = (model.embed(x) if kind != "separator" else out.magnitudes).float().abs().mean()
    loss.backward()
    assert torch.isfinite(loss)


def test_channels_last_gives_the_same_output():
    separator, extractor = Separator(TINY).eval(), FeatureExtractor(TINY).eval()
    magnitude = torch.rand(2, BINS, 259)
    with torch.no_grad():
        reference = separator(magnitude).magnitude
        reference_embedding = extractor(reference)
        separator.to(memory_format=torch.channels_last)
        extractor.to(memory_format=torch.channels_last)
        separated = separator(magnitude).magnitude
        embedding = extractor(separated)
    torch.testing.assert_close(separated, reference, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(embedding, reference_embedding, atol=1e-5, rtol=1e-4)

    encoder = UNetEncoder(3, TINY).eval()
    x = torch.randn(2, 3, 33, 17)
    with torch.no_grad():
        expected = encoder(x)[-1]
        got = encoder(x.to(memory_format=torch.channels_last))[-1]
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("kind", ["cascade", "direct_reconst"])
def test_folding_batch_norms_keeps_the_embeddings(kind):
    model = tiny(kind)
    for module in model.modules():  # trained-looking statistics, so that folding has something to do
        if isinstance(module, nn.BatchNorm2d):
            for tensor, low, high in ((module.running_mean, -0.5, 0.5), (module.running_var, 0.5, 2.0),
                                      (module.weight.data, 0.5, 1.5), (module.bias.data, -0.2, 0.2)):
                tensor.uniform_(low, high)
    model.eval()
    mixture = 0.3 * torch.randn(2, SEGMENTS[3][0])
    with torch.inference_mode():
        expected = model.embed(mixture)
        folded = fold_batch_norms(model)
        got = folded.embed(mixture)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, PolyphaseConvTranspose) for m in folded.modules())  # the mask layers
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="eval mode"):
        fold_batch_norms(tiny(kind))


# --- config -----------------------------------------------------------------------------------

def test_paper_defaults_and_parameter_counts():
    direct = build_model({"type": "direct"}, SLAKH)
    assert direct.encoder.channels == (16, 32, 64, 128, 256, 640)
    cascade = build_model({"type": "cascade", "target_sources": SLAKH[:4]}, SLAKH)
    assert isinstance(cascade, Cascade) and cascade.sources == tuple(SLAKH[:4])
    assert num_parameters(cascade) == 4 * num_parameters(Separator()) + 4 * num_parameters(FeatureExtractor())
    assert isinstance(build_model({"type": "clean"}, SLAKH), Clean)
    assert isinstance(build_model({"type": "separator"}, SLAKH), SourceSeparator)


@pytest.mark.parametrize("cfg, message", [
    ({"type": "cascade", "mel_band": 128}, "mel_band"),
    ({"type": "cascade", "unet": {"channel": TINY}}, "channel"),
    ({"type": "direct", "mel_bands": 259}, "mel_bands"),
    ({"type": "transformer"}, "type"),
    ({"type": "cascade", "unet": {"channels": [4, 0]}}, "unet.channels"),
    ({"type": "cascade", "target_sources": ["drums", "vocals"]}, "vocals"),
    ({"type": "direct_reconst", "unet": {"channels": [4, 8, 33]}}, "equal source blocks"),
    ({"type": "separator", "unet": {"dropout": 1.5}}, "unet.dropout"),
])
def test_bad_config_is_an_error_naming_the_key(cfg, message):
    with pytest.raises(ModelConfigError, match=message):
        build_model(cfg, SLAKH)


# --- one instrument's path per item (training) ------------------------------------------------

@pytest.mark.parametrize("kind", ["clean", "cascade", "direct_reconst"])
def test_routed_forward_gives_each_items_own_path_of_the_full_forward(kind):
    """Training runs each triplet through its instrument's path only; that must be exactly the
    corresponding part of the full forward (eval mode: no dropout, fixed BatchNorm)."""
    torch.manual_seed(0)
    model = tiny(kind).eval()
    x = torch.randn(4, 5, 66150) * 0.1 if kind == "clean" else torch.randn(4, 66150) * 0.1
    route = torch.tensor([2, 0, 2, 1])
    rows = torch.arange(4)
    with torch.no_grad():
        full, routed = model(x), model(x, route=route)
    if kind == "clean":
        torch.testing.assert_close(routed.embeddings, full[rows, route])
    elif kind == "cascade":
        torch.testing.assert_close(routed.embeddings, full.embeddings[rows, route])
        torch.testing.assert_close(routed.separated, full.separation.magnitudes[rows, route])
    else:
        torch.testing.assert_close(routed.embedding, full.embedding)
        torch.testing.assert_close(routed.reconstructions[:, 0], full.reconstructions[rows, route])


def test_direct_sees_the_linear_magnitude_unless_told_to_use_decibels():
    """The authors' Direct reads the linear mixture magnitude (a gain scales its input); the db option
    standardises each example, so a ×0.25 gain changes nothing the encoder sees."""
    torch.manual_seed(0)
    mixture = torch.randn(2, 66150) * 0.2
    linear, db = tiny("direct").eval(), tiny("direct", input={"scale": "db", "standardize": True}).eval()
    assert (linear.input_scale.scale, linear.input_scale.standardize) == ("linear", False)
    with torch.no_grad():
        assert not torch.allclose(linear.embed(0.25 * mixture), linear.embed(mixture), atol=1e-4)
        torch.testing.assert_close(db.embed(0.25 * mixture), db.embed(mixture), atol=1e-3, rtol=1e-3)
    with pytest.raises(ModelConfigError, match="input.scale"):
        tiny("direct", input={"scale": "mel"})


def test_separators_can_read_the_magnitude_in_decibels():
    """model.input applies to the separators' encoders too; the mask still scales the linear mixture,
    so with standardised decibels a gain scales the separated magnitude by the same gain."""
    torch.manual_seed(0)
    separator = tiny("separator", input={"scale": "db", "standardize": True}).eval()
    mixture = torch.randn(2, 66150) * 0.2
    with torch.no_grad():
        loud, quiet = separator(mixture).magnitudes, separator(0.25 * mixture).magnitudes
    torch.testing.assert_close(quiet, 0.25 * loud, atol=1e-3, rtol=1e-3)
    cascade = tiny("cascade", input={"scale": "db", "standardize": True})
    assert cascade.separator.separators["drums"].input_scale.scale == "db"


@pytest.mark.parametrize("in_channels,out_channels,bias", [(6, 1, True), (4, 3, False)])
def test_polyphase_transposed_convolution_equals_the_transposed_convolution(in_channels, out_channels, bias):
    conv = nn.ConvTranspose2d(in_channels, out_channels, 5, 2, 2, output_padding=1, bias=bias)
    for height, width in ((1, 1), (7, 10), (13, 9)):
        x = torch.randn(2, in_channels, height, width)
        with torch.inference_mode():
            torch.testing.assert_close(PolyphaseConvTranspose(conv)(x), conv(x), atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="polyphase"):
        PolyphaseConvTranspose(nn.ConvTranspose2d(4, 1, 3, 2, 1, output_padding=1))
