"""Published weights that feature extractors need (SSCD, CLIP, Inception), fetched on request.

One table, the ``weights`` registry: TOML entries ``<registry folder>/weights/<name>.toml``
(the built-ins ship in ``membench/assets/registry/weights/``; a workspace or
``$MEMBENCH_REGISTRY`` folder may add more). Each entry names the publisher's URL, the
file's place under ``$MEMBENCH_CACHE`` and the checksum the publisher gives (a full
SHA-256, or only the prefix the publisher encodes in the file name; see ``table``).
``membench weights list`` shows them, ``membench weights fetch NAME`` downloads one
(``fetch``). Extractors find their files through ``table.local_file``.
"""
from membench.core.registry import Registry

WEIGHTS = Registry("weights", noun="weights file", folders=True, code=False,
                   describe="membench.weights.table:describe")
