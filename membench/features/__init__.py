"""Feature extractors: images -> vectors, one registry for the detectors and the quality metrics.

One module per extractor; see ``base.FeatureExtractor`` for the interface, ``cache`` for
the per-(dataset, extractor) cache of training-set features and ``fidelity`` for the
torch-fidelity adapter that lets the quality metrics (FID, KID, precision/recall) use any
registered extractor. The two digits networks are different committed networks with
different jobs: ``digits-embedder`` (copy detection, ``digits-sim``) and
``digits-classifier`` (the quality default; ``--quality-extractor digits`` names it).
Plugins: the entry-point group ``membench.features`` (``membench.embedders``, its former
name, still works); a plugin must have ``embed``.
"""
from membench.core.lazy import lazy_exports
from membench.core.registry import Lazy, Registry

FEATURES = Registry("features", noun="feature extractor", groups=("membench.features", "membench.embedders"), required={
    "embed": (callable, "embed(images, device) -> (N, D) float32"),
}, builtins={
    "pixels": Lazy("membench.features.pixels:PixelEmbedder",
                   "flattened pixels, per-image mean removed by default: the baseline for learned extractors"),
    "sscd": Lazy("membench.features.sscd:SSCDEmbedder",
                 "SSCD copy-detection descriptors (Pizzi et al. 2022), 512-d; torchvision state dict (weights_only), CC-BY-NC"),
    "clip": Lazy("membench.features.clip:ClipEmbedder",
                 "open_clip image embeddings (default ViT-B-32, laion2b_s34b_b79k)"),
    "digits-embedder": Lazy("membench.features.digits:DigitsEmbedder",
                            "the project's copy-detection embedder for 8x8 digits (SSCD-style, 128-d; committed)"),
    "digits-classifier": Lazy("membench.features.digits_classifier:DigitsClassifierFeatures",
                              "the project's digits classifier, 32-d standardized penultimate layer (committed); "
                              "the quality default, `digits`"),
    "inception-v3": Lazy("membench.features.inception:InceptionV3Features",
                         "torch-fidelity's Inception-v3 pool features (2048-d) for FID on natural images; local weights"),
})

__all__ = ["FEATURES", "FeatureExtractor", "Embedder", "make_extractor", "make_embedder"]
__getattr__ = lazy_exports(__name__, {name: "membench.features.base" for name in __all__[1:]})
