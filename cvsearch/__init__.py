"""Search a CV corpus with a job description: read résumés, encode them, store them in Milvus, rank.

Modules: :mod:`cvsearch.parsing` (inputs), :mod:`cvsearch.encoding` (resumable, multi-process
encoding), :mod:`cvsearch.windows` (long CVs), :mod:`cvsearch.store` (:class:`CVIndex`),
:mod:`cvsearch.cli` (the ``cre`` command). See docs/search.md.

Example:
    >>> from cvsearch import CVIndex, load_model, read_documents
    >>> index = CVIndex(load_model("minilm"), db="cvs.db")  # doctest: +SKIP
    >>> index.add(read_documents("resumes/"))  # doctest: +SKIP
    >>> index.search("Registered nurse, intensive care", top_k=5)  # doctest: +SKIP
"""

from common.windows import SCHEMES
from cvsearch.encoding import EncodedCorpus, encode_corpus, load_model
from cvsearch.parsing import Document, InputError, RunReport, read_documents
from cvsearch.store import CVIndex
from cvsearch.windows import Windows

__all__ = [
    "SCHEMES",
    "CVIndex",
    "Document",
    "EncodedCorpus",
    "InputError",
    "RunReport",
    "Windows",
    "encode_corpus",
    "load_model",
    "read_documents",
]
