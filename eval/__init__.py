"""Recall-first evaluation of CRE and baseline embedding models.

Modules, one concern each:

* :mod:`eval.metrics`: Recall/Precision/hit rate/MRR/NDCG (graded)/MAP at K, macro over queries.
* :mod:`eval.ir_data`: queries, corpus and judgments (llama-index JSON, TREC), validated on load.
* :mod:`eval.models`: :func:`~eval.models.load_encoder` for CRE checkpoints, aliases and
  sentence-transformers models; :mod:`eval.cache` keeps their embeddings on disk.
* :mod:`eval.retrieval`: exact chunked top-k search, BM25 pools, pool files.
* :mod:`eval.protocols`: global-pool retrieval and local-pool reranking (cosine, cosine − λ·boundary).
* :mod:`eval.benchmarks`: O*NET and ESCO JD–JD, résumé JD→CV, recruiter questions → CV passages
  (``cvseeker``) and job-title normalisation (``jobnorm``), from the development data folder.
* :mod:`eval.suite`: the development suite (benchmarks and main metrics), its macro average over the
  zero-shot backbone with a bootstrap CI, and :func:`~eval.suite.recipe_is_acceptable`.
* :mod:`eval.runner`, :mod:`eval.compare`, :mod:`eval.stats`: models side by side, tables, plots and
  paired bootstrap tests; the results JSON schema is in :mod:`eval.compare`.
* :mod:`eval.boundary`: λ grid search and the BoundaryHead transfer diagnostic.
* :mod:`eval.judge`: LLM-as-judge labels for unlabeled pools.

Command line: ``python -m eval --help``.
"""
