"""The real-data benchmarks, built from the development data folder (see its README).

* ``onet``: graded JD–JD retrieval. Queries are the occupations of one split (``dev`` by default),
  the corpus is every occupation but the query, gains come from ``related_occupations.tsv``
  (Primary-Short 3, Primary-Long 2, Supplemental 1). NDCG@10, Recall@20, MRR@10.
* ``esco``: JD–JD retrieval over the ESCO occupations. Same 4-digit ISCO group: gain 2 (relevant);
  same 3-digit group only: gain 1 (partly relevant, counts for NDCG only). Queries with no other
  occupation in their 4-digit group are skipped and counted. NDCG@10, Recall@20, MRR@10.
* ``resumes``: JD→CV. One O*NET-based JD per résumé category (:data:`RESUME_CATEGORY_TO_ONET`)
  against the deduplicated résumés; relevant = résumés of that category. Local pool (BM25 top
  ``pool_size``), Recall@K and Precision@K for K = 10..70.
* ``resumes-brief``, ``resumes-duties``, ``resumes-titles``: the same résumés and labels with each
  category's JD written another way (:data:`JD_STYLES`), new BM25 pools. A gain tuned on the postings
  of ``resumes`` that does not survive these was tuned to the wording, not the job.
* ``cvseeker`` (evaluation only): recruiter questions against all résumé passages of the CVSeeker
  validation split, one relevant passage each. hit@1/5/10, MRR@10.
* ``jobnorm`` (evaluation only): job-title normalisation. Each vacancy title ranks the ESCO
  occupations by preferred label; relevant = the occupation the job board tagged. MRR@100,
  Recall@5/10/100 (with Recall@100 the full-ranking MRR is known to within ``(1 − R@100) / 101``).

JD–JD benchmarks encode both sides with kind ``jd``: the task is symmetric, and E5-style models use
the same instruction on both sides of symmetric tasks. ``cvseeker`` encodes questions as ``query`` and
passages as ``cv``: a passage is résumé text, the side CRE's JD→CV training and its ``query``
instruction ("retrieve résumé passages") pair with, and the kind a user indexing résumé chunks would
pick; ``document`` is for any other text. ``jobnorm`` encodes both titles and occupation labels as
``jd`` (task ``jd-jd``): a vacancy title is the shortest possible JD and an occupation label a
canonical one, so the task is JD–JD matching, and the ``query`` instruction (a recruiter's question
about résumés) would describe the wrong task. Occupation texts are
``"{title}\\n{description}"``; the résumé-category JDs add the O*NET core tasks and hot technologies
so that they read like postings. Résumé ids are content hashes: no résumé text ever reaches logs or
results.

The data folder is an argument, else ``$CRE_DATA_DIR``, else ``../shared/data`` next to the repo.

Example:
    >>> bench = load_benchmark("onet")  # doctest: +SKIP
    >>> bench.dataset.num_judged_queries  # doctest: +SKIP
    182
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections import defaultdict
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from eval.ir_data import DatasetFormatError, IRDataset, load_llama_index_json
from eval.retrieval import bm25_pools

LOCAL_POOL_CUTOFFS = [10, 20, 30, 40, 50, 60, 70]
JD_JD_METRICS = {"ndcg": [10], "recall": [20], "mrr": [10]}
ONET_TIER_GAINS = {"Primary-Short": 3, "Primary-Long": 2, "Supplemental": 1}

# Résumé category -> the O*NET occupation whose description, tasks and tools make its JD. Several
# categories share an occupation (O*NET does not split developers by language); their JDs still
# differ because the posting title is the category name.
RESUME_CATEGORY_TO_ONET = {
    "Advocate": "23-1011.00",  # Lawyers
    "Arts": "27-1013.00",  # Fine Artists, Including Painters, Sculptors, and Illustrators
    "Automation Testing": "15-1253.00",  # Software Quality Assurance Analysts and Testers
    "Blockchain": "15-1299.07",  # Blockchain Engineers
    "Business Analyst": "13-1111.00",  # Management Analysts
    "Civil Engineer": "17-2051.00",  # Civil Engineers
    "Data Science": "15-2051.00",  # Data Scientists
    "Database": "15-1242.00",  # Database Administrators
    "DevOps Engineer": "15-1299.08",  # Computer Systems Engineers/Architects
    "DotNet Developer": "15-1252.00",  # Software Developers
    "ETL Developer": "15-1243.01",  # Data Warehousing Specialists
    "Electrical Engineering": "17-2071.00",  # Electrical Engineers
    "HR": "13-1071.00",  # Human Resources Specialists
    "Hadoop": "15-1243.00",  # Database Architects
    "Health and fitness": "39-9031.00",  # Exercise Trainers and Group Fitness Instructors
    "Java Developer": "15-1252.00",  # Software Developers
    "Mechanical Engineer": "17-2141.00",  # Mechanical Engineers
    "Network Security Engineer": "15-1299.05",  # Information Security Engineers
    "Operations Manager": "11-1021.00",  # General and Operations Managers
    "PMO": "13-1082.00",  # Project Management Specialists
    "Python Developer": "15-1251.00",  # Computer Programmers
    "SAP Developer": "15-1211.00",  # Computer Systems Analysts
    "Sales": "41-3091.00",  # Sales Representatives of Services
    "Testing": "15-1253.00",  # Software Quality Assurance Analysts and Testers
    "Web Designing": "15-1255.00",  # Web and Digital Interface Designers
}
JD_TASKS = 8
JD_TECHNOLOGIES = 15
# How a category's JD is written. Each rewrite keeps the occupation and drops one thing a model could
# lean on: "posting" (the benchmark's own) is the category, description, first core tasks and hot
# technologies; "brief" only the category and description; "duties" the category with the tasks and
# tools the posting leaves out (the other tasks, whatever their type, and tools that are not hot); "titles"
# the posting's content under O*NET's title and the job titles incumbents report, not the category.
JD_STYLES = ("posting", "brief", "duties", "titles")
JD_REPORTED_TITLES = 3
CVSEEKER_METRICS = {"hit_rate": [1, 5, 10], "mrr": [10]}
# MRR is cut at 100 so that 15k titles need no full 2,942-deep ranking each; Recall@100 bounds the gap.
JOBNORM_METRICS = {"mrr": [100], "recall": [5, 10, 100]}


class DataNotFoundError(FileNotFoundError):
    """The development data (or one of its files) is absent; callers skip the benchmark."""


@dataclass
class Benchmark:
    """A dataset plus how to evaluate it.

    Attributes:
        name: Short name used in tables.
        dataset: Queries, corpus and judgments.
        protocol: ``"global"`` (search the whole corpus) or ``"local"`` (rerank ``pools``).
        metrics: Metric name -> cut-offs.
        query_kind: Encoder kind of the queries.
        doc_kind: Encoder kind of the documents.
        min_gain: Smallest gain that counts as relevant for binary metrics.
        exclude_self: Drop a document whose id equals the query id (JD–JD).
        pools: Query id -> candidate ids (local protocol only).
        notes: Free text for the report (label sources, skipped queries).
        task: What the vectors are compared with, for models with task adapters: ``"jd-jd"`` (JD–JD
            search), ``"jd-cv"`` (JD→CV matching and reranking) or ``"title"`` (job titles against
            occupation names).
    """

    name: str
    dataset: IRDataset
    protocol: str
    metrics: dict[str, list[int]]
    query_kind: str = "query"
    doc_kind: str = "document"
    min_gain: float = 1
    exclude_self: bool = False
    pools: dict[str, list[str]] | None = None
    notes: dict[str, object] = field(default_factory=dict)
    task: str = "jd-cv"

    @property
    def top_k(self) -> int:
        """The deepest cut-off any metric needs."""
        return max(k for cutoffs in self.metrics.values() for k in cutoffs)


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data folder: ``data_dir``, else ``$CRE_DATA_DIR``, else ``<repo>/../shared/data``.

    Raises:
        DataNotFoundError: The folder does not exist.
    """
    default = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
    folder = Path(data_dir or os.environ.get("CRE_DATA_DIR") or default)
    if not folder.is_dir():
        raise DataNotFoundError(
            f"development data folder {folder} not found; pass --data-dir or set CRE_DATA_DIR"
        )
    return folder


def read_table(path: Path, required: list[str], delimiter: str = "\t", encoding: str = "utf-8") -> list[dict]:
    """Read a TSV/CSV with a header, checking that the ``required`` columns exist.

    Raises:
        DataNotFoundError: The file is absent.
        DatasetFormatError: A required column is missing.
    """
    if not path.is_file():
        raise DataNotFoundError(f"{path} not found")
    with path.open(encoding=encoding, newline="") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        missing = [column for column in required if column not in (reader.fieldnames or [])]
        if missing:
            raise DatasetFormatError(f"{path}: missing column(s) {missing}; found {reader.fieldnames}")
        return list(reader)


def onet_occupation_texts(onet_dir: Path) -> dict[str, str]:
    """O*NET-SOC code -> ``"{title}\\n{description}"`` for every occupation."""
    rows = read_table(onet_dir / "occupation_data.tsv", ["O*NET-SOC Code", "Title", "Description"])
    return {row["O*NET-SOC Code"]: f"{row['Title']}\n{row['Description']}" for row in rows}


def onet_benchmark(data_dir: str | os.PathLike | None = None, split: str = "dev") -> Benchmark:
    """O*NET graded JD–JD retrieval (see the module docstring).

    Raises:
        ValueError: ``split`` is ``"test"`` (reserved) or names no occupation.
        DatasetFormatError: An unknown relatedness tier (file and line named).
    """
    if split == "test":
        raise ValueError("the O*NET test split is reserved; evaluate on 'dev' (or 'train')")
    onet_dir = resolve_data_dir(data_dir) / "onet"
    corpus = onet_occupation_texts(onet_dir)
    split_rows = read_table(onet_dir / "splits.tsv", ["onet_soc_code", "split"])
    query_ids = [row["onet_soc_code"] for row in split_rows if row["split"] == split]
    if not query_ids:
        raise ValueError(f"{onet_dir / 'splits.tsv'}: no occupation in split {split!r}")
    path = onet_dir / "related_occupations.tsv"
    qrels: dict[str, dict[str, float]] = defaultdict(dict)
    columns = ["O*NET-SOC Code", "Related O*NET-SOC Code", "Relatedness Tier"]
    for line_no, row in enumerate(read_table(path, columns), start=2):
        if row["O*NET-SOC Code"] not in query_ids:
            continue
        tier = row["Relatedness Tier"]
        if tier not in ONET_TIER_GAINS:
            raise DatasetFormatError(f"{path}:{line_no}: unknown relatedness tier {tier!r}")
        qrels[row["O*NET-SOC Code"]][row["Related O*NET-SOC Code"]] = ONET_TIER_GAINS[tier]
    dataset = IRDataset.from_dicts({q: corpus[q] for q in query_ids}, corpus, qrels, source=str(path))
    return _jd_jd_benchmark("onet", dataset, min_gain=1, notes={"split": split, "gains": ONET_TIER_GAINS})


def _jd_jd_benchmark(name: str, dataset: IRDataset, min_gain: float, notes: dict) -> Benchmark:
    """JD–JD retrieval over a corpus that holds the queries themselves (so they are excluded)."""
    notes = {**notes, "skipped": _counts(dataset.skipped)}
    return Benchmark(
        name,
        dataset,
        "global",
        JD_JD_METRICS,
        "jd",
        "jd",
        min_gain,
        exclude_self=True,
        notes=notes,
        task="jd-jd",
    )


def esco_benchmark(data_dir: str | os.PathLike | None = None) -> Benchmark:
    """ESCO JD–JD retrieval graded by ISCO group (see the module docstring)."""
    path = resolve_data_dir(data_dir) / "esco" / "occupations_en.csv"
    rows = read_table(path, ["conceptUri", "iscoGroup", "preferredLabel", "description"], delimiter=",")
    corpus, group_of = {}, {}
    for line_no, row in enumerate(rows, start=2):
        group = row["iscoGroup"].strip().zfill(4)
        if not group.isdigit() or len(group) != 4:
            raise DatasetFormatError(
                f"{path}:{line_no}: iscoGroup {row['iscoGroup']!r} is not a 4-digit code"
            )
        corpus[row["conceptUri"]] = f"{row['preferredLabel']}\n{row['description']}"
        group_of[row["conceptUri"]] = group
    members: dict[str, list[str]] = defaultdict(list)
    for uri, group in group_of.items():
        members[group[:3]].append(uri)
    qrels, lonely = {}, []
    for uri, group in group_of.items():
        peers = {other: 2 if group_of[other] == group else 1 for other in members[group[:3]] if other != uri}
        if 2 in peers.values():
            qrels[uri] = peers
        else:
            lonely.append(uri)
    dataset = IRDataset.from_dicts({q: corpus[q] for q in qrels}, corpus, qrels, source=str(path))
    dataset.skipped["no other occupation in the 4-digit ISCO group"] = sorted(lonely)
    return _jd_jd_benchmark(
        "esco", dataset, min_gain=2, notes={"gains": {"same 4-digit group": 2, "same 3-digit group": 1}}
    )


def resume_id(text: str) -> str:
    """A stable id that does not reveal the résumé."""
    return "cv-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def category_jds(categories: list[str], onet_dir: Path, style: str = "posting") -> dict[str, str]:
    """One JD per résumé category, built from its mapped O*NET occupation and written in ``style``
    (one of :data:`JD_STYLES`).

    Raises:
        KeyError: A category is not in :data:`RESUME_CATEGORY_TO_ONET`.
        ValueError: ``style`` is not one of :data:`JD_STYLES`.
    """
    if style not in JD_STYLES:
        raise ValueError(f"unknown JD style {style!r}; choose from {JD_STYLES}")
    unmapped = sorted(set(categories) - set(RESUME_CATEGORY_TO_ONET))
    if unmapped:
        raise KeyError(f"résumé categories {unmapped} have no O*NET mapping in RESUME_CATEGORY_TO_ONET")
    occupations = onet_occupation_texts(onet_dir)
    core_tasks: dict[str, list[str]] = defaultdict(list)
    all_tasks: dict[str, list[str]] = defaultdict(list)  # core, supplemental and not yet rated
    for row in read_table(onet_dir / "task_statements.tsv", ["O*NET-SOC Code", "Task", "Task Type"]):
        all_tasks[row["O*NET-SOC Code"]].append(row["Task"])
        if row["Task Type"] == "Core":
            core_tasks[row["O*NET-SOC Code"]].append(row["Task"])
    tools: dict[bool, dict[str, list[str]]] = {True: defaultdict(list), False: defaultdict(list)}
    for row in read_table(
        onet_dir / "technology_skills.tsv", ["O*NET-SOC Code", "Example", "Hot Technology"]
    ):
        tools[row["Hot Technology"] == "Y"][row["O*NET-SOC Code"]].append(row["Example"])
    reported_titles: dict[str, list[str]] = defaultdict(list)
    if style == "titles":
        columns = ["O*NET-SOC Code", "Reported Job Title", "Shown in My Next Move"]
        for row in read_table(onet_dir / "reported_titles.tsv", columns):
            if row["Shown in My Next Move"] == "Y":  # the titles O*NET shows job seekers
                reported_titles[row["O*NET-SOC Code"]].append(row["Reported Job Title"])

    def write(category: str) -> str:
        code = RESUME_CATEGORY_TO_ONET[category]
        title, description = occupations[code].split("\n", 1)
        if style == "brief":
            return f"{category}\n{description}"
        if style == "duties":
            lines = [category]
            in_posting = set(core_tasks[code][:JD_TASKS])
            duties = [task for task in all_tasks[code] if task not in in_posting][:JD_TASKS]
            label, technologies = "Tools", tools[False][code]
        else:
            if style == "posting":
                lines = [category, title, description]
            else:
                lines = [" / ".join([title, *reported_titles[code][:JD_REPORTED_TITLES]]), description]
            duties = core_tasks[code][:JD_TASKS]
            label, technologies = "Technologies", tools[True][code]
        lines += ["Responsibilities:", *(f"- {task}" for task in duties)]
        if technologies:
            lines.append(f"{label}: " + ", ".join(technologies[:JD_TECHNOLOGIES]))
        return "\n".join(lines)

    return {category: write(category) for category in categories}


def resume_benchmark(
    data_dir: str | os.PathLike | None = None,
    pool_size: int = 100,
    pools: dict[str, list[str]] | None = None,
    jd_style: str = "posting",
) -> Benchmark:
    """JD→CV over the deduplicated résumés, local BM25 pools (see the module docstring).

    Args:
        data_dir: Development data folder.
        pool_size: BM25 candidates per JD when ``pools`` is not given.
        pools: Candidate pools to use instead of BM25 (query id = category name).
        jd_style: How each category's JD is written (:data:`JD_STYLES`; names the benchmark, see
            :func:`resume_benchmark_name`).
    """
    folder = resolve_data_dir(data_dir)
    path = folder / "resumes" / "updated_resume_dataset.csv"
    rows = read_table(path, ["Category", "Resume"], delimiter=",", encoding="latin-1")
    corpus: dict[str, str] = {}
    categories_of: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        doc_id = resume_id(row["Resume"])
        corpus[doc_id] = row["Resume"]
        categories_of[doc_id].add(row["Category"])
    queries = category_jds(sorted(set().union(*categories_of.values())), folder / "onet", jd_style)
    qrels: dict[str, dict[str, float]] = defaultdict(dict)
    for doc_id, categories in categories_of.items():
        for category in categories:
            qrels[category][doc_id] = 1
    dataset = IRDataset.from_dicts(queries, corpus, qrels, source=str(path))
    pool_source = "user-supplied" if pools is not None else f"bm25s top {pool_size}"
    if pools is None:
        pools = bm25_pools(dataset.queries, dataset.corpus, pool_size)
    return Benchmark(
        name=resume_benchmark_name(jd_style),
        dataset=dataset,
        protocol="local",
        metrics={"recall": LOCAL_POOL_CUTOFFS, "precision": LOCAL_POOL_CUTOFFS},
        query_kind="jd",
        doc_kind="cv",
        pools=pools,
        notes={
            "rows": len(rows),
            "distinct_resumes": len(corpus),
            "pool": pool_source,
            "pool_recall": pool_recall(pools, dataset.qrels),
            "category_to_onet": RESUME_CATEGORY_TO_ONET,
            "jd_style": jd_style,
        },
    )


def resume_benchmark_name(jd_style: str) -> str:
    """``resumes`` for the benchmark's own postings, ``resumes-{jd_style}`` for a rewrite."""
    return "resumes" if jd_style == "posting" else f"resumes-{jd_style}"


def pool_recall(pools: dict[str, list[str]], qrels: dict[str, dict[str, float]]) -> float:
    """Mean share of each query's relevant documents that its pool contains: the ceiling of any reranker."""
    shares = [len(set(pools.get(q, ())) & set(judged)) / len(judged) for q, judged in qrels.items()]
    return sum(shares) / len(shares)


def _counts(skipped: dict[str, list[str]]) -> dict[str, int]:
    return {reason: len(ids) for reason, ids in skipped.items()}


def cvseeker_benchmark(data_dir: str | os.PathLike | None = None) -> Benchmark:
    """Recruiter questions against résumé passages (``cvseeker/val_dataset.json``; evaluation only).

    Raises:
        DataNotFoundError: The file is absent.
        DatasetFormatError: The JSON breaks the llama-index format (file and id named).
    """
    path = resolve_data_dir(data_dir) / "cvseeker" / "val_dataset.json"
    if not path.is_file():
        raise DataNotFoundError(f"{path} not found")
    dataset = load_llama_index_json(path)
    return Benchmark(
        "cvseeker",
        dataset,
        "global",
        CVSEEKER_METRICS,
        query_kind="query",
        doc_kind="cv",
        notes={"skipped": _counts(dataset.skipped), "split": "validation"},
        task="jd-cv",
    )


def jobnorm_benchmark(data_dir: str | os.PathLike | None = None) -> Benchmark:
    """Vacancy titles against ESCO preferred labels (``jobnorm/titles_validation.csv``; evaluation only).

    Query ids are ``title-{row}`` (the data row, 1 = first after the header).

    Raises:
        DataNotFoundError: A file is absent.
        DatasetFormatError: A missing column, an empty title, or a ``conceptUri`` that is not an
            ESCO occupation (file and row named).
    """
    folder = resolve_data_dir(data_dir)
    esco_path = folder / "esco" / "occupations_en.csv"
    rows = read_table(esco_path, ["conceptUri", "preferredLabel"], delimiter=",")
    labels = {row["conceptUri"]: row["preferredLabel"] for row in rows}
    path = folder / "jobnorm" / "titles_validation.csv"
    queries, qrels = {}, {}
    for row_no, row in enumerate(read_table(path, ["vacancyTitle", "conceptUri"], delimiter=","), start=1):
        title, uri = row["vacancyTitle"].strip(), row["conceptUri"].strip()
        if not title:
            raise DatasetFormatError(f"{path}: data row {row_no}: empty vacancyTitle")
        if uri not in labels:
            raise DatasetFormatError(
                f"{path}: data row {row_no}: conceptUri {uri!r} is not an occupation of {esco_path}"
            )
        queries[f"title-{row_no}"] = title
        qrels[f"title-{row_no}"] = {uri: 1}
    dataset = IRDataset.from_dicts(queries, labels, qrels, source=str(path))
    return title_benchmark("jobnorm", dataset, {"corpus": "ESCO preferred labels", "split": "validation"})


def title_benchmark(name: str, dataset: IRDataset, notes: dict[str, object]) -> Benchmark:
    """Job titles against occupation names, evaluated as ``jobnorm`` is: both sides ``jd``, task
    ``title``, every name ranked (MRR@100, Recall@5/10/100)."""
    return Benchmark(
        name, dataset, "global", JOBNORM_METRICS, query_kind="jd", doc_kind="jd", notes=notes, task="title"
    )


# The résumé benchmark under each JD style; all share its résumés, labels and options.
RESUME_BENCHMARKS = {
    resume_benchmark_name(style): partial(resume_benchmark, jd_style=style) for style in JD_STYLES
}
BENCHMARKS = {
    "onet": onet_benchmark,
    "esco": esco_benchmark,
    **RESUME_BENCHMARKS,
    "cvseeker": cvseeker_benchmark,
    "jobnorm": jobnorm_benchmark,
}


def load_benchmark(name: str, data_dir: str | os.PathLike | None = None, **options) -> Benchmark:
    """Build a benchmark by name (a key of :data:`BENCHMARKS`)."""
    if name not in BENCHMARKS:
        raise KeyError(f"unknown benchmark {name!r}; choose from {sorted(BENCHMARKS)}")
    return BENCHMARKS[name](data_dir, **options)
