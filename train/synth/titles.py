"""Job titles paired with their occupations: the title-normalisation task's training pairs.

Recruiters and job boards write titles their own way ("Java Backend Engineer II", "RN - ICU nights");
search and normalisation must map them onto occupations. Two public taxonomies list such variants,
and both may be trained on (``../shared/data/README.md``):

* O*NET ``train``-split occupations: their alternate titles and the titles incumbents reported;
* ESCO occupations: their alternative labels.

Each variant is paired with its occupation's name: title↔title, the ``title`` task's own pairs (job-title
normalisation ranks occupation names). A share of the variants can be printed as job boards print
vacancy titles (:func:`vacancy_title`), which the taxonomies' clean variants never are. Titles against
whole job descriptions are JD–JD search's business: merged into its weights, title pairs pushed sibling
occupations apart and cost it O*NET and ESCO (docs/research-log.md), so the title task trains its own
adapter. The pairs come from the derived copy shipped with the project unless a data folder is given
(:func:`train.synth.loaders.training_data_dir`).

Example:
    >>> pairs = title_pairs(per_occupation=2, seed=0)
    >>> sorted(pairs[0])
    ['id', 'positive', 'query', 'source_id', 'split']
    >>> len({pair["source_id"] for pair in pairs}) > 3000  # O*NET train occupations and ESCO's
    True
"""

from __future__ import annotations

import os
import random
import re
from collections import defaultdict

from train.synth.loaders import load_esco_jds, load_onet_jds, read_esco, read_tsv, training_data_dir

TITLE_FILES = {"alternate_titles.tsv": "Alternate Title", "reported_titles.tsv": "Reported Job Title"}

# What job boards print around an occupation's words, which the taxonomies' variants never carry:
# seniority before the title; contract, hours, place, pay and the gender note of EU boards after it.
SENIORITY = ("Senior", "Junior", "Lead", "Principal", "Graduate", "Trainee", "Experienced", "Entry Level")
DETAILS = (
    ("Full Time", "Part Time", "Permanent", "Temporary", "Contract", "Fixed Term", "Temp to Perm",
     "Maternity Cover", "Apprenticeship", "Internship", "Freelance"),
    ("Nights", "Days", "Weekends", "Flexible Hours", "Shift Work", "Monday to Friday", "20 Hours"),
    ("London", "Manchester", "Leeds", "Glasgow", "Dublin", "Berlin", "Amsterdam", "New York", "Toronto",
     "Sydney", "Remote", "Hybrid", "Home Based", "Field Based", "Nationwide"),
    ("£24,000 - £28,000", "£12.50 per hour", "up to £45k", "$60,000", "€3,000 per month", "Competitive Salary",
     "DOE", "+ Benefits", "Excellent Package"),
    ("(m/f/d)", "(m/w/d)", "(f/m/x)", "(all genders)"),
    ("Immediate Start", "Urgent", "New", "No Experience Needed", "Training Provided",
     "Driving Licence Required"),
)  # fmt: skip
SEPARATORS = (" - ", " | ", ", ", " – ", " / ", " ")


def _key(title: str) -> str:
    return re.sub(r"\W+", " ", title.casefold()).strip()


def vacancy_title(title: str, rng: random.Random) -> str:
    """``title`` as a job board might print it: a seniority word before it, one or two details (contract,
    hours, place, pay, a gender note, ...) after it, or both.

    Example:
        >>> vacancy_title("Care Assistant", random.Random(0))
        'Care Assistant / Contract'
    """
    words = title
    shape = rng.choice(("before", "after", "both"))
    if shape != "after":
        words = f"{rng.choice(SENIORITY)} {words}"
    if shape != "before":
        for family in rng.sample(DETAILS, rng.choice((1, 1, 2))):
            detail = rng.choice(family)
            words += " " + detail if detail.startswith(("(", "+")) else rng.choice(SEPARATORS) + detail
    return words


def title_pairs(
    folder: str | os.PathLike | None = None,
    per_occupation: int = 8,
    seed: int = 0,
    vacancy_share: float = 0.0,
) -> list[dict]:
    """Up to ``per_occupation`` (title variant, occupation) training pairs per occupation.

    Args:
        folder: A data folder with ``onet/`` and ``esco/`` (default: the shipped derived copy).
        per_occupation: Variants drawn per occupation (seeded), so that occupations with hundreds of
            alternate titles do not drown the others.
        seed: Changes which variants are drawn.
        vacancy_share: The share of variants printed as a job board would (:func:`vacancy_title`); the
            variants drawn do not depend on it.

    Returns:
        Records ``{"id", "source_id", "split": "train", "query": variant, "positive": name}``;
        ``source_id`` is the occupation's JD id (``onet:<code>`` or ``esco:<id>``).
    """
    if not 0.0 <= vacancy_share <= 1.0:
        raise ValueError(f"vacancy_share must be between 0 and 1, got {vacancy_share}")
    rng, dressing = random.Random(seed), random.Random(f"vacancy/{seed}")
    variants: dict[str, list[str]] = defaultdict(list)
    onet = training_data_dir(folder) / "onet"
    for name, column in TITLE_FILES.items():
        for row in read_tsv(onet / name):
            variants[f"onet:{row['O*NET-SOC Code']}"].append(row[column])
    occupations = [jd for jd in load_onet_jds(folder, "train", stack_variants=False) if jd.id in variants]
    for row in read_esco(folder):
        variants[row["id"]] += row["alternates"]
    esco = load_esco_jds(folder)
    pairs = []
    for jd in occupations + esco:
        seen = {_key(jd.title)}
        unique = [v for v in variants[jd.id] if _key(v) not in seen and not seen.add(_key(v))]
        for number, variant in enumerate(rng.sample(unique, min(per_occupation, len(unique)))):
            pairs.append(
                {
                    "id": f"{jd.id}/title/{number}",
                    "source_id": jd.id,
                    "split": "train",
                    "query": vacancy_title(variant, dressing)
                    if dressing.random() < vacancy_share
                    else variant,
                    "positive": jd.title,
                }
            )
    return pairs
