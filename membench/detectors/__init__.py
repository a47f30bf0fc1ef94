"""Memorization detectors, one per module; see ``base.Detector`` for the interface.

``DETECTORS`` declares the built-ins (lazily: listing them imports none of their code).
Plugins: entry-point group ``membench.detectors``; a plugin must have ``detect`` and a bool
``higher_is_memorized`` (its score direction). Variants with other defaults are TOML
entries ``registry/detectors/<name>.toml`` (``base = "l2ratio"`` plus ``[params]``).

Built-ins tagged ``"membership"`` (the model-based membership tests, tens of seconds per model)
are opt-in: ``all`` leaves them out, ``membership`` names the group (``--detector all,membership``).
"""
OPT_IN_GROUP = "membership"
from membench.core.lazy import lazy_exports
from membench.core.registry import Lazy, Registry

DETECTORS = Registry("detectors", folders=True, required={
    "detect": (callable, "detect(samples, train, ctx) -> DetectorOutput"),
    "higher_is_memorized": (bool, "the score direction, True when a higher score means more memorized"),
}, builtins={
    "l2ratio": Lazy("membench.detectors.l2ratio:L2Ratio",
                    "distance to the nearest over the 2nd-nearest training image, pixels; flagged < 1/3"),
    "carlini": Lazy("membench.detectors.carlini:CalibratedL2",
                    "calibrated L2 of Carlini et al. 2023: nearest distance over alpha x mean of the n nearest"),
    "embedsim": Lazy("membench.detectors.embedsim:EmbeddingSimilarity",
                     "max cosine similarity in any feature extractor's space (embedsim:embedder=NAME)"),
    "sscd": Lazy("membench.detectors.embedsim:SSCDSimilarity",
                 "max cosine similarity of SSCD descriptors; flagged > 0.5 (Somepalli et al. 2023)"),
    "clip": Lazy("membench.detectors.embedsim:ClipSimilarity",
                 "max cosine similarity of open_clip embeddings (uncalibrated threshold 0.95)"),
    "digits-sim": Lazy("membench.detectors.embedsim:DigitsSimilarity",
                       "max cosine similarity of the project's digits embedder (offline); flagged > 0.985"),
    "nn-heldout": Lazy("membench.detectors.copying:NearestHeldout",
                       "sample nearer its nearest training image than any of as many held-out images; null: other held-out"),
    "copying": Lazy("membench.detectors.copying:DataCopying",
                    "data-copying test C_T of Meehan et al. 2020 (k-means cells, Mann-Whitney z); C_T << 0: copying"),
    "mmd-heldout": Lazy("membench.detectors.copying:MMDHeldout",
                        "kernel two-sample test: samples nearer (MMD) the training set than held-out images, permutation p"),
    "loss-mia": Lazy("membench.detectors.membership:LossMIA",
                     "membership: denoising loss of training vs held-out images at the most informative sigma (AUC, TPR@1%FPR) [opt-in: --detector membership]", tags=("membership",)),
    "pia": Lazy("membench.detectors.membership:PIA",
                "membership: proximal initialization attack (Kong et al. 2024) on the model's denoiser (AUC, TPR@1%FPR) [opt-in: --detector membership]", tags=("membership",)),
    "secmi": Lazy("membench.detectors.membership:SecMI",
                  "membership: SecMI-stat (Duan et al. 2023), deterministic ODE inversion error (AUC, TPR@1%FPR) [opt-in: --detector membership]", tags=("membership",)),
    "sharpness": Lazy("membench.detectors.sharpness:Sharpness",
                      "sharpness of the learned density at the sample, 1 - tr(J_D)/d (Jeon et al. 2025)"),
})

__all__ = ["DETECTORS", "Detector", "DetectorContext", "DetectorOutput", "make_detector"]
__getattr__ = lazy_exports(__name__, {name: "membench.detectors.base" for name in __all__[1:]})
