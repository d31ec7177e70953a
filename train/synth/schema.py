"""Records that flow through the synthesis pipeline: input JDs, stage outcomes and split assignment.

Example:
    >>> from train.synth.schema import JobDescription, split_of
    >>> jd = JobDescription(id="acme-1", title="Data Engineer", text="We build pipelines ...")
    >>> split_of(jd.id) in ("train", "validation")
    True
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field

STAGES = (
    "extraction",
    "paraphrase",
    "card",
    "role_boundary",
    "constraint_conflict",
    "jdcv_balanced",
    "jdcv_deceptive",
    "cv_queries",
)
# The CRE paper's names for the code's stages (docs/synthesis.md uses the same words). The paper's
# pipeline has five stages, all JD–JD; the code adds three that build the JD–CV corpus and its queries.
PAPER_STAGES = {
    "extraction": "Stage 1: structured anchor",
    "paraphrase": "Stage 2: paraphrase positive",
    "card": "Stage 3: summary-to-card positive",
    "role_boundary": "Stage 4: role-boundary hard negatives",
    "constraint_conflict": "Stage 5: constraint-conflict negative",
    "jdcv_balanced": "JD–CV corpus: balanced triplets (beyond the paper)",
    "jdcv_deceptive": "JD–CV corpus: deceptive hard negatives (beyond the paper)",
    "cv_queries": "recruiter queries over CVs (beyond the paper)",
}
SENIORITIES = ("intern", "junior", "mid", "senior", "lead", "manager", "unspecified")
DECEPTIVE_TYPES = (
    "title_inflation",
    "contractor_intern_confusion",
    "career_pivot",
    "skill_stuffing",
    "influencer_noise",
    "adjacent_role",
)
NEGATIVE_TYPES = ("screening", *DECEPTIVE_TYPES)
SIBLING_STACK = "sibling_stack"  # the fitting CV of the same occupation's JD for another technology stack
TRIPLET_NEGATIVE_TYPES = (*NEGATIVE_TYPES, SIBLING_STACK)  # every negative_type of jdcv.jsonl
VALIDATION_PERCENT = 10


@dataclass(frozen=True)
class JobDescription:
    """One input JD. Only ``id``, ``title`` and ``text`` feed the pipeline; the rest is carried along.

    Attributes:
        id: Unique, stable identifier (it decides the split and keys resumption).
        title: The job title as advertised.
        text: The full JD text.
        source: Where it came from (``cre-seed-v1``, ``onet``, ``esco``, a file name).
        family: Optional job family label.
        seniority: Optional seniority label.
        meta: Free-form extra fields.
    """

    id: str
    title: str
    text: str
    source: str = "user"
    family: str | None = None
    seniority: str | None = None
    meta: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class StageOutcome:
    """What one stage produced for one JD: validated samples, and a reason for each rejected one."""

    stage: str
    source_id: str
    kept: list[dict] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def split_of(source_id: str) -> str:
    """``"validation"`` for about :data:`VALIDATION_PERCENT` % of source ids (stable hash), else ``"train"``.

    Every sample derived from a JD inherits the JD's split, so no JD leaks across splits. A specialisation
    ``<base>~<variant>`` goes where its base goes: siblings share texts and are each other's negatives.
    """
    base = source_id.split("~", 1)[0]
    bucket = int(hashlib.sha1(base.encode("utf-8")).hexdigest()[:8], 16) % 100
    return "validation" if bucket < VALIDATION_PERCENT else "train"
