"""Build an untrained CRE checkpoint from a pretrained backbone.

The backbone's weights are copied unchanged into :class:`~modeling_cre.CREModel`, and the pooling,
length and normalisation of a sentence-transformers backbone folder are carried over, so the new
checkpoint embeds exactly like the original model until it is trained. Decoder backbones get
last-token pooling, left padding and an EOS token appended by the tokenizer itself (so CRE's
``encode`` and sentence-transformers read the same tokens).

Command line::

    python -m train.init_model --backbone minilm --out outputs/cre-minilm-init
    python -m train.init_model --backbone smollm2-135m --out outputs/cre-smollm2-init --rt-iterations 1
    python -m train.init_model --backbone smollm2-135m --out outputs/cre-smollm2-embtoken --pooling embtoken

The model is built by :func:`common.models.build_cre_model`, which evaluation and benchmarks use too.

Example:
    >>> from common.models import build_cre_model
    >>> model = build_cre_model("minilm")  # doctest: +SKIP
    >>> model.encode("Registered nurse, ICU, 5 years", kind="cv").shape  # doctest: +SKIP
    (384,)
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from common.models import build_cre_model
from cre.configuration_cre import POOLING_MODES, RT_PLACEMENTS
from train.data import report_data_errors
from train.model_card import write_model_card


@report_data_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--backbone", default="minilm", help="alias (minilm, smollm2-135m, mpnet), folder or Hub id"
    )
    parser.add_argument("--out", required=True, help="checkpoint folder to write")
    parser.add_argument(
        "--pooling", choices=POOLING_MODES, help="embtoken: decoders only, reads an added <embtoken> (CRE-T1)"
    )
    parser.add_argument("--max-length", type=int)
    parser.add_argument(
        "--cnn", action="store_true", help="enable the CNN projection (identity until trained)"
    )
    parser.add_argument("--rt-iterations", type=int, help="RT iterations at inference (0 = off)")
    parser.add_argument("--rt-placement", choices=RT_PLACEMENTS)
    parser.add_argument("--boundary-head", action="store_true", help="add an (untrained) BoundaryHead")
    args = parser.parse_args(argv)

    overrides: dict[str, Any] = {}
    if args.pooling:
        overrides["pooling"] = args.pooling
    if args.max_length:
        overrides["max_length"] = args.max_length
    if args.cnn:
        overrides["cnn"] = {"enabled": True}
    rt = {
        k: v
        for k, v in {"iterations": args.rt_iterations, "placement": args.rt_placement}.items()
        if v is not None
    }
    if rt:
        overrides["rt"] = rt
    if args.boundary_head:
        overrides["boundary"] = {"enabled": True}
    model = build_cre_model(args.backbone, **overrides)
    model.save_pretrained(args.out)
    write_model_card(args.out, round_name="init (untrained)", base_model=args.backbone)
    print(f"Wrote CRE checkpoint ({args.backbone}, {model.config.pooling} pooling) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
