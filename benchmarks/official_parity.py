"""Numerical parity of our GALIP, RATLIP, DF-GAN and RAT-GAN with the official networks, on the same weights.

For each checkout given, the official NetG, NetD and NetC (`models/GALIP.py` of tobran/GALIP,
`models/RATLIP.py` of OxygenLu/RATLIP) are imported from the user's `code/` folder (nothing of them is
copied here) and built at the sizes of that checkout's `cfg/birds.yml` around an OpenAI-`clip` ViT-B/32
of random weights. Every tensor of theirs that starts as a constant (LayerNorm/BatchNorm affines,
BatchNorm statistics, the zero-initialised last layers of the affines, Mate-D's γ/β, the Shuffle
Attention gates, attention biases) is then perturbed from a fixed seed, so no branch of the computation
is trivially the identity or zero. Their state dicts are saved as an official checkpoint
`{'model': {'netG', 'netD', 'netC'}}`, loaded with our converter (`load_official`, which also checks
netG's copy of the CLIP against ours) into our model at the paper preset (`galip.cub` / `ratlip.cub`),
whose CLIP is open_clip's ViT-B-32 carrying the same OpenAI-layout weights (read as
t2igan/text/clip.py reads OpenAI's file). Both sides run in eval mode, fp32, on CPU, on the same inputs:

    CLIP text        their CLIP_TXT_ENCODER vs our encoder's `encode` on the same token ids
    CLIP image maps  their CLIP_IMG_ENCODER vs our `image_features` (patch maps at blocks 1, 4, 8)
    CLIP image emb   the projected CLS of the same
    netG             the same noise and sentence embedding
    netD             the same CLIP maps (theirs)
    netC             the same netD features (theirs) and sentences
    D end to end     images -> CLIP -> netD -> netC against our discriminator(images, sentence)

and the maximum absolute difference is printed per network, with the output's scale. Run:

    python benchmarks/official_parity.py --galip /path/to/GALIP/code --ratlip /path/to/RATLIP/code

DF-GAN and RAT-GAN work on pixels and DAMSM sentences, so no CLIP is involved. Their official networks are
imported the same way: NetG / NetD / NetC from tobran/DF-GAN `code/models/GAN.py` at the sizes of its
`code/cfg/bird.yml`; NetG / NetD (its COND_DNET head inside) and the CustomLSTM they share (`DAMSM.py`) from
senmaoy/Recurrent-Affine-Transformation-for-Text-to-image-Synthesis `code/model.py` (4 affines per block)
and `code/model_flower.py` (6), at the sizes of `code/cfg/bird.yml` / `flower.yml`, built as its
`code/main.py` builds them. Their constants (the affines' last layers, the blocks' γ) are perturbed as
above; they are saved as released (DF-GAN `{'model': {'netG', 'netD', 'netC'}}` with DDP's `module.`
prefixes; RAT-GAN plain netG / netD files, the LSTM repeated in every block), loaded with the plugins'
`load_official` into `dfgan.bird256`, `ratgan.bird256` and `ratgan.flower256`, and compared on the same
noise, sentence embeddings (in (-1, 1), like DAMSM's h_n) and images:

    affine inputs    the condition each affine of netG receives, in call order: cat(noise, sentence) in
                     DF-GAN; in RAT-GAN the LSTM's h_t at each of its 28 (flower 42) steps, its state set
                     from the noise (the official call first runs `netG.lstm.init_hidden(noise)`, as its
                     main.py does; ours does it inside), which the images alone show only faintly
    netG             noise and sentence
    netG pre-tanh    the same, before the final tanh (which would hide differences where it saturates)
    netD             image features
    netC / COND_DNET the same features (theirs) and sentences
    D end to end     images -> NetD -> head against our discriminator(images, sentence)

each with PASS / FAIL against --pixel-tol. `--nf` narrows both sides when memory or time is short (the
output then says the sizes are not the released ones). Run:

    python benchmarks/official_parity.py --dfgan /path/to/DF-GAN/code --ratgan /path/to/RAT-GAN/code

Workarounds applied at import time only (the checkouts are not modified):
  * their `lib/utils.py` imports `easydict` at the top (used only to read cfg files); when it is not
    installed a minimal stand-in module (a dict with attribute access) is put in `sys.modules`;
  * the OpenAI `clip` package's `__init__` imports `pkg_resources`, absent from recent setuptools; its
    `clip/model.py` (which imports only torch and numpy) is therefore loaded directly from the file;
  * RATLIP.py imports `fightingcv_attention.attention.ShuffleAttention`. Install the real package apart
    from the project (`pip install --no-deps --target DIR fightingcv-attention==1.0.0`, then
    `PYTHONPATH=DIR`). Only when it cannot be imported is a stand-in built from our
    plugins/ratlip/shuffle_attention.py used; the script then says so, and the Shuffle Attention is no longer
    checked independently.
  * RAT-GAN's CustomLSTM lives in `DAMSM.py`, which imports `miscc/config.py` (easydict: the stand-in
    above) and torchvision (one of our dependencies);
  * no bytecode is written into the checkouts while they are imported.
None of GALIP.py, RATLIP.py, GAN.py, model.py, model_flower.py calls `.cuda()`; the official networks need
no patching on CPU. GALIP, RATLIP and DF-GAN name their packages `models` and `lib`, RAT-GAN has top-level
`model`, `model_flower`, `DAMSM` and `miscc`: all are dropped from `sys.modules` between checkouts.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
import tempfile
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import Tensor, nn

from t2igan.models import build_model, parse_model_ref, resolve
from t2igan.nn.interfaces import BuildContext
from t2igan.registry import get_registry
from t2igan.text.clip import CLIPSource, CLIPTextImageEncoder, build_open_clip_model, openai_config

# OpenAI clip/model.py CLIP(...) for ViT-B/32: embed 512, 224 px, 12 x 768 visual, patch 32, context 77,
# vocabulary 49408, text 512 wide with 8 heads and 12 layers (what build_model infers from its weights)
VIT_B32 = dict(
    embed_dim=512,
    image_resolution=224,
    vision_layers=12,
    vision_width=768,
    vision_patch_size=32,
    context_length=77,
    vocab_size=49408,
    transformer_width=512,
    transformer_heads=8,
    transformer_layers=12,
)
SOT, EOT = 49406, 49407  # the BPE vocabulary's start / end-of-text ids
CLIP_COPY = "mapping.CLIP_ViT."
CONSTANT_MATRIX_NOISE, CONSTANT_VECTOR_NOISE = 0.02, 0.1
# top-level modules of the official `code/` folders (GALIP, RATLIP, DF-GAN; RAT-GAN)
OFFICIAL_TOP_LEVEL = ("models", "lib", "model", "model_flower", "DAMSM", "miscc")


# ------------------------------------------------------------------------------------ official imports


def standin_easydict() -> None:
    """An `easydict` module (a dict with attribute access) when the package is not installed."""
    if "easydict" in sys.modules or importlib.util.find_spec("easydict") is not None:
        return  # installed, or the stand-in is already in place (a second official import)

    class EasyDict(dict):
        def __getattr__(self, name: str) -> Any:
            try:
                return self[name]
            except KeyError as exc:
                raise AttributeError(name) from exc

        def __setattr__(self, name: str, value: Any) -> None:
            self[name] = value

    module = types.ModuleType("easydict")
    module.EasyDict = EasyDict
    sys.modules["easydict"] = module


def _standin_shuffle_attention() -> bool:
    """Make `fightingcv_attention.attention.ShuffleAttention` importable; False when it is our stand-in."""
    try:
        importlib.import_module("fightingcv_attention.attention.ShuffleAttention")
        return True
    except ImportError:
        pass
    from t2igan_plugins.ratlip.shuffle_attention import ShuffleAttention as Ours

    class ShuffleAttention(Ours):  # the package's signature: (channel=512, reduction=16, G=8)
        def __init__(self, channel: int = 512, reduction: int = 16, G: int = 8):  # noqa: N803
            super().__init__(channel, G)

    names = ("fightingcv_attention", "fightingcv_attention.attention")
    for name in names:
        sys.modules[name] = types.ModuleType(name)
    leaf = types.ModuleType("fightingcv_attention.attention.ShuffleAttention")
    leaf.ShuffleAttention = ShuffleAttention
    leaf.__all__ = ["ShuffleAttention"]
    sys.modules[leaf.__name__] = leaf
    return False


def import_from_checkout(code_dir: Path, *modules: str) -> list[types.ModuleType]:
    """`modules` of a checkout's `code/` folder, none of another checkout's same-named modules kept."""
    for path in modules:
        if not (code_dir / f"{path.replace('.', '/')}.py").is_file():
            sys.exit(
                f"{code_dir}: expected the `code` folder of the checkout, holding {path.replace('.', '/')}.py"
            )
    for name in list(sys.modules):
        if name.split(".")[0] in OFFICIAL_TOP_LEVEL:
            del sys.modules[name]
    sys.path.insert(0, str(code_dir))
    dont_write_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        return [importlib.import_module(module) for module in modules]
    finally:
        sys.path.remove(str(code_dir))
        sys.dont_write_bytecode = dont_write_bytecode


def import_official(code_dir: Path, module: str) -> types.ModuleType:
    """`models.<module>` of a checkout's `code/` folder, with the checkout's own `lib`."""
    return import_from_checkout(code_dir, f"models.{module}")[0]


def openai_clip_model_module() -> types.ModuleType:
    spec = importlib.util.find_spec("clip")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("the OpenAI `clip` package (openai-clip) is needed to build the official side's CLIP")
    path = Path(next(iter(spec.submodule_search_locations))) / "model.py"
    loaded = importlib.util.spec_from_file_location("_openai_clip_model", path)
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------------------------ weights


def perturb_constants(
    named: Iterable[tuple[str, Tensor]], generator: torch.Generator, skip: Callable[[str], bool]
) -> None:
    """Give every tensor that starts as a constant random values near it (BN statistics plausible)."""
    with torch.no_grad():
        for name, tensor in named:
            if skip(name) or not tensor.is_floating_point():
                continue
            if name.endswith("running_var"):
                tensor.copy_(0.5 + torch.rand(tensor.shape, generator=generator))
            elif tensor.numel() == 1 or bool(tensor.max() == tensor.min()):
                scale = CONSTANT_MATRIX_NOISE if tensor.dim() >= 2 else CONSTANT_VECTOR_NOISE
                tensor.add_(scale * torch.randn(tensor.shape, generator=generator))


def named_tensors(module: nn.Module) -> list[tuple[str, Tensor]]:
    return [*module.named_parameters(), *module.named_buffers()]


def random_openai_clip(clip_model: types.ModuleType, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = clip_model.CLIP(**VIT_B32).float().eval()
    perturb_constants(named_tensors(model), torch.Generator().manual_seed(seed), lambda name: False)
    return model


def our_clip(openai_model: nn.Module) -> CLIPTextImageEncoder:
    """open_clip's ViT-B-32 holding the OpenAI-layout weights, as t2igan.text.clip.load_clip builds it."""
    state = {k: v.detach().clone() for k, v in openai_model.state_dict().items()}
    config = openai_config(state)
    model = build_open_clip_model(config, None, state, "random OpenAI-layout ViT-B/32")
    source = CLIPSource(name="ViT-B-32", pretrained="random (parity)", model_config=config)
    return CLIPTextImageEncoder(model, None, "paper", source).freeze()


def random_tokens(batch: int, generator: torch.Generator) -> Tensor:
    tokens = torch.zeros(batch, VIT_B32["context_length"], dtype=torch.long)
    for row in range(batch):
        length = int(torch.randint(5, 30, (1,), generator=generator))
        tokens[row, 0] = SOT
        tokens[row, 1 : length + 1] = torch.randint(1, SOT, (length,), generator=generator)
        tokens[row, length + 1] = EOT
    return tokens


# ---------------------------------------------------------------------------------------- comparison


def compare(name: str, ours: Tensor, theirs: Tensor, tol: float | None = None) -> float:
    if ours.numel() != theirs.numel():
        print(f"  {name:<16} shapes differ: ours {tuple(ours.shape)}, official {tuple(theirs.shape)}   FAIL")
        return float("inf")
    ours, theirs = ours.detach().float().reshape(theirs.shape), theirs.detach().float()
    diff = float((ours - theirs).abs().max())
    scale = float(theirs.abs().max())
    verdict = "" if tol is None else ("   PASS" if diff <= tol else "   FAIL")
    print(f"  {name:<16} max |ours - official| = {diff:.3e}   (max |official| = {scale:.3e}){verdict}")
    return diff


def parity(
    model_name: str,
    code_dir: Path,
    module: str,
    batch: int,
    seed: int,
    clip_model: types.ModuleType,
    standins: list[str],
) -> dict[str, float]:
    official = import_official(code_dir, module)
    cfg = yaml.safe_load((code_dir / "cfg" / "birds.yml").read_text())
    nf, z_dim, cond_dim = int(cfg["nf"]), int(cfg["z_dim"]), int(cfg["cond_dim"])
    imsize, ch_size = int(cfg["imsize"]), int(cfg["ch_size"])

    openai_model = random_openai_clip(clip_model, seed)
    torch.manual_seed(seed + 1)
    net_g = official.NetG(nf, z_dim, cond_dim, imsize, ch_size, False, openai_model)
    net_d = official.NetD(nf, imsize, ch_size, False)
    net_c = official.NetC(nf, cond_dim, False)
    generator = torch.Generator().manual_seed(seed + 2)
    for net in (net_g, net_d, net_c):
        perturb_constants(named_tensors(net), generator, lambda name: name.startswith(CLIP_COPY))
        net.eval()
    image_encoder = official.CLIP_IMG_ENCODER(openai_model).eval()
    text_encoder = official.CLIP_TXT_ENCODER(openai_model).eval()

    encoder = our_clip(openai_model)
    registry = get_registry()
    ours = build_model(
        resolve(parse_model_ref(f"{model_name}.cub"), registry), BuildContext(registry, encoder)
    )
    load_official = importlib.import_module(f"t2igan_plugins.{model_name}.convert").load_official
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "state_epoch_000.pth"
        nets = {"netG": net_g.state_dict(), "netD": net_d.state_dict(), "netC": net_c.state_dict()}
        torch.save({"model": nets, "epoch": 0}, path)
        load_official(ours, path)  # checks netG's CLIP copy against `encoder` too
    ours.eval()

    inputs = torch.Generator().manual_seed(seed + 3)
    tokens = random_tokens(batch, inputs)
    noise = torch.randn(batch, z_dim, generator=inputs)
    images = torch.rand(batch, 3, imsize, imsize, generator=inputs) * 2 - 1
    standin = f"  [stand-ins: {', '.join(standins)}]" if standins else ""
    print(f"{model_name} ({code_dir}): batch {batch}, seed {seed}, fp32, CPU, eval{standin}")
    results: dict[str, float] = {}
    with torch.no_grad():
        sentence, _ = text_encoder(tokens)
        results["CLIP text"] = compare("CLIP text", encoder.encode({"tokens": tokens}).sentence, sentence)
        their_maps, their_embedding = image_encoder(images)
        our_maps, our_embedding = encoder.image_features(images)
        results["CLIP image maps"] = compare("CLIP image maps", our_maps, their_maps)
        results["CLIP image emb"] = compare("CLIP image emb", our_embedding, their_embedding)
        results["netG"] = compare("netG", ours.generator(noise, sentence), net_g(noise, sentence, eval=True))
        their_features = net_d(their_maps)
        results["netD"] = compare("netD", ours.discriminator.backbone(their_maps), their_features)
        their_logits = net_c(their_features, sentence)
        results["netC"] = compare("netC", ours.discriminator.head(their_features, sentence), their_logits)
        end_to_end = net_c(net_d(image_encoder(images)[0]), sentence)
        results["D end to end"] = compare("D end to end", ours.discriminator(images, sentence), end_to_end)
    return results


# ------------------------------------------------------------------------------- DF-GAN and RAT-GAN


@dataclass(frozen=True)
class Sizes:
    nf: int
    noise_dim: int
    cond_dim: int
    image_size: int

    def __str__(self) -> str:
        return f"nf {self.nf}, z {self.noise_dim}, cond {self.cond_dim}, {self.image_size} px"


@dataclass
class OfficialPixelGAN:
    """An official DF-GAN-style model seen through the calls our GANModel answers."""

    generate: Callable[[Tensor, Tensor], Tensor]  # (noise, sentence) -> images
    generator: nn.Module  # NetG, whose affines' inputs are recorded
    rgb_conv: nn.Module  # its last conv, before the tanh
    features: nn.Module  # NetD: images -> features
    head: Callable[[Tensor, Tensor], Tensor]  # (features, sentence) -> logits
    head_name: str
    networks: tuple[nn.Module, ...]  # all the modules holding weights


def generate_recorded(
    run: Callable[[], Tensor], generator: nn.Module, rgb_conv: nn.Module
) -> tuple[Tensor, Tensor, Tensor]:
    """`run()`'s images, what `rgb_conv` gave (before the tanh) and the condition every affine of
    `generator` received, stacked in call order (RAT-GAN: the LSTM's h_t at each of its steps)."""
    pre_tanh: list[Tensor] = []
    conditions: list[Tensor] = []
    handles = [rgb_conv.register_forward_hook(lambda module, inputs, output: pre_tanh.append(output.clone()))]
    handles += [
        module.register_forward_hook(lambda module, inputs, output: conditions.append(inputs[0].clone()))
        for name, module in generator.named_modules()
        if name.endswith("fc_gamma")
    ]
    try:
        images = run()
    finally:
        for handle in handles:
            handle.remove()
    return images, pre_tanh[-1], torch.stack(conditions)


def compare_pixel_gan(
    ours: Any, official: OfficialPixelGAN, sizes: Sizes, batch: int, seed: int, tol: float
) -> dict[str, float]:
    inputs = torch.Generator().manual_seed(seed + 3)
    noise = torch.randn(batch, sizes.noise_dim, generator=inputs)
    sentence = torch.rand(batch, sizes.cond_dim, generator=inputs) * 2 - 1  # DAMSM's h_n is in (-1, 1)
    images = torch.rand(batch, 3, sizes.image_size, sizes.image_size, generator=inputs) * 2 - 1
    results: dict[str, float] = {}
    with torch.no_grad():
        our_images, our_pre, our_conditions = generate_recorded(
            lambda: ours.generator(noise, sentence), ours.generator, ours.generator.to_rgb[1]
        )
        their_images, their_pre, their_conditions = generate_recorded(
            lambda: official.generate(noise, sentence), official.generator, official.rgb_conv
        )
        results["affine inputs"] = compare("affine inputs", our_conditions, their_conditions, tol)
        results["netG"] = compare("netG", our_images, their_images, tol)
        results["netG pre-tanh"] = compare("netG pre-tanh", our_pre, their_pre, tol)
        their_features = official.features(images)
        results["netD"] = compare("netD", ours.discriminator.features(images), their_features, tol)
        their_logits = official.head(their_features, sentence)
        our_logits = ours.discriminator.logits(their_features, sentence)
        results[official.head_name] = compare(official.head_name, our_logits, their_logits, tol)
        end_to_end = official.head(official.features(images), sentence)
        results["D end to end"] = compare(
            "D end to end", ours.discriminator(images, sentence), end_to_end, tol
        )
    return results


def pixel_parity(
    preset: str,
    code_dir: Path,
    sizes: Sizes,
    released_nf: int,
    official: OfficialPixelGAN,
    save: Callable[[Path], Any],
    args: argparse.Namespace,
) -> dict[str, float]:
    """Perturb the official networks, load what `save(folder)` writes through our converter into our
    `preset` (at `sizes.nf` when --nf narrows it), and compare the two on the same inputs."""
    generator = torch.Generator().manual_seed(args.seed + 2)
    for net in official.networks:
        perturb_constants(named_tensors(net), generator, lambda name: False)
        net.eval()
    registry = get_registry()
    override = "" if sizes.nf == released_nf else f":nf={sizes.nf}"
    resolved = resolve(parse_model_ref(preset + override), registry)
    preset_sizes = Sizes(*(int(resolved.config[k]) for k in ("nf", "noise_dim", "cond_dim", "image_size")))
    narrowed = f"  [--nf {sizes.nf}: NOT the released nf {released_nf}]" if override else ""
    print(f"{preset} ({code_dir}): {sizes}, batch {args.batch}, seed {args.seed}, fp32, CPU, eval{narrowed}")
    if preset_sizes != sizes:
        print(f"  sizes differ: the checkout's cfg gives {sizes}, our preset {preset_sizes}")
    ours = build_model(resolved, BuildContext(registry))
    load_official = importlib.import_module(f"t2igan_plugins.{resolved.spec.name}.convert").load_official
    with tempfile.TemporaryDirectory() as tmp:
        load_official(ours, save(Path(tmp)))
    ours.eval()
    return compare_pixel_gan(ours, official, sizes, args.batch, args.seed, args.pixel_tol)


def dfgan_parity(code_dir: Path, args: argparse.Namespace) -> dict[str, float]:
    (gan,) = import_from_checkout(code_dir, "models.GAN")
    cfg = yaml.safe_load((code_dir / "cfg" / "bird.yml").read_text())
    released_nf, ch_size = int(cfg["nf"]), int(cfg["ch_size"])
    sizes = Sizes(args.nf or released_nf, int(cfg["z_dim"]), int(cfg["cond_dim"]), int(cfg["imsize"]))
    torch.manual_seed(args.seed + 1)
    net_g = gan.NetG(sizes.nf, sizes.noise_dim, sizes.cond_dim, sizes.image_size, ch_size)
    net_d = gan.NetD(sizes.nf, sizes.image_size, ch_size)
    net_c = gan.NetC(sizes.nf, sizes.cond_dim)
    official = OfficialPixelGAN(
        generate=net_g,
        generator=net_g,
        rgb_conv=net_g.to_rgb[1],
        features=net_d,
        head=net_c,
        head_name="netC",
        networks=(net_g, net_d, net_c),
    )

    def save(folder: Path) -> Path:
        # code/lib/utils.py save_models after DDP training (scripts/train.sh): `module.` on every key
        nets = {"netG": net_g, "netD": net_d, "netC": net_c}
        model = {name: {f"module.{k}": v for k, v in net.state_dict().items()} for name, net in nets.items()}
        torch.save({"model": model, "epoch": 0}, folder / "state_epoch_000.pth")
        return folder / "state_epoch_000.pth"

    return pixel_parity("dfgan.bird256", code_dir, sizes, released_nf, official, save, args)


# RAT-GAN layouts: our preset, the official models file (4 / 6 affines per block), its cfg
RATGAN_LAYOUTS = (("ratgan.bird256", "model", "bird.yml"), ("ratgan.flower256", "model_flower", "flower.yml"))
# code/main.py NetG(cfg.TRAIN.NF, 100, lstm); DAMSM.py CustomLSTM.noise2h: Linear(100, 256)
RATGAN_NOISE_DIM = 100


def ratgan_parity(
    code_dir: Path, preset: str, module: str, cfg_name: str, args: argparse.Namespace
) -> dict[str, float]:
    models, damsm = import_from_checkout(code_dir, module, "DAMSM")
    cfg = yaml.safe_load((code_dir / "cfg" / cfg_name).read_text())
    released_nf = int(cfg["TRAIN"]["NF"])
    sizes = Sizes(
        args.nf or released_nf,
        RATGAN_NOISE_DIM,
        int(cfg["TEXT"]["EMBEDDING_DIM"]),
        int(cfg["TREE"]["BASE_SIZE"]),
    )
    torch.manual_seed(args.seed + 1)
    lstm = damsm.CustomLSTM(sizes.cond_dim, sizes.cond_dim)  # code/main.py: CustomLSTM(256, 256)
    net_g = models.NetG(sizes.nf, sizes.noise_dim, lstm)
    net_d = models.NetD(sizes.nf)

    def generate(noise: Tensor, sentence: Tensor) -> Tensor:
        net_g.lstm.init_hidden(noise)  # code/main.py does this before every netG call
        return net_g(noise, sentence)

    official = OfficialPixelGAN(
        generate=generate,
        generator=net_g,
        rgb_conv=net_g.conv_img[1],
        features=net_d,
        head=net_d.COND_DNET,
        head_name="COND_DNET",
        networks=(net_g, net_d),
    )

    def save(folder: Path) -> list[Path]:
        # code/main.py: torch.save(netG.state_dict(), 'netG_%03d.pth'), the same for netD
        paths = [folder / "netG_000.pth", folder / "netD_000.pth"]
        torch.save(net_g.state_dict(), paths[0])
        torch.save(net_d.state_dict(), paths[1])
        return paths

    return pixel_parity(preset, code_dir, sizes, released_nf, official, save, args)


def over_bound(label: str, results: dict[str, float], tol: float) -> list[str]:
    return [f"{label} {net} {diff:.3e} > {tol:g}" for net, diff in results.items() if diff > tol]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--galip", type=Path, help="tobran/GALIP checkout's code/ folder")
    parser.add_argument("--ratlip", type=Path, help="OxygenLu/RATLIP checkout's code/ folder")
    parser.add_argument("--dfgan", type=Path, help="tobran/DF-GAN checkout's code/ folder")
    parser.add_argument(
        "--ratgan",
        type=Path,
        help="senmaoy/Recurrent-Affine-Transformation-for-Text-to-image-Synthesis checkout's code/ folder",
    )
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--tol", type=float, default=1e-4, help="the bound for the GALIP / RATLIP generator (fp32)"
    )
    parser.add_argument(
        "--pixel-tol", type=float, default=1e-5, help="the bound for every DF-GAN / RAT-GAN network (fp32)"
    )
    parser.add_argument(
        "--nf", type=int, help="DF-GAN / RAT-GAN width instead of the released one (to save memory or time)"
    )
    args = parser.parse_args()
    if all(path is None for path in (args.galip, args.ratlip, args.dfgan, args.ratgan)):
        parser.error("give --galip, --ratlip, --dfgan and/or --ratgan")
    torch.set_num_threads(args.threads)
    standin_easydict()

    failed = []
    clip_model = openai_clip_model_module() if args.galip or args.ratlip else None
    for name, code_dir, module in (("galip", args.galip, "GALIP"), ("ratlip", args.ratlip, "RATLIP")):
        if code_dir is None:
            continue
        standins = []
        if name == "ratlip" and not _standin_shuffle_attention():
            standins.append(
                "fightingcv ShuffleAttention <- t2igan_plugins.ratlip.shuffle_attention (not checked)"
            )
            print("WARNING: fightingcv_attention is not importable; using our ShuffleAttention on both sides")
        results = parity(name, code_dir, module, args.batch, args.seed, clip_model, standins)
        if results["netG"] > args.tol:
            failed.append(f"{name} netG {results['netG']:.3e} > {args.tol:g}")
    if args.dfgan is not None:
        failed += over_bound("dfgan.bird256", dfgan_parity(args.dfgan, args), args.pixel_tol)
    if args.ratgan is not None:
        for preset, module, cfg_name in RATGAN_LAYOUTS:
            results = ratgan_parity(args.ratgan, preset, module, cfg_name, args)
            failed += over_bound(preset, results, args.pixel_tol)
    if failed:
        sys.exit(f"FAIL: {'; '.join(failed)}")
    print("PASS: every bounded output is within its bound")


if __name__ == "__main__":
    main()
