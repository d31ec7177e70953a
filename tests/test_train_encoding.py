"""Training batches embedded in chunks of similar length give the one-pass vectors and gradients."""

from __future__ import annotations

import torch

from train.encoding import LENGTH_CHUNK, BatchEncoder

FIELDS = {
    "query": (
        "query",
        ["Which tools at Acme?", "Who led the migration project at Northwind Labs last year?", "SQL?"],
    ),
    "positive": (
        "cv",
        ["Built dbt models and Looker dashboards. " * 6, "Nurse.", "Led the Kafka migration " * 3],
    ),
}


def test_chunks_by_length_reproduce_the_one_pass_vectors_and_gradients(tiny_cre):
    model = tiny_cre("encoder").eval()  # no dropout: the two ways must agree exactly, up to float rounding
    one_pass = BatchEncoder.for_model(model, 64, processes=2)  # DDP: one forward per backward
    chunked = BatchEncoder(model, one_pass.max_length, chunk_size=2)
    assert one_pass.chunk_size == 0 and BatchEncoder.for_model(model, 64).chunk_size == LENGTH_CHUNK
    grads = []
    for encoder in (one_pass, chunked):
        model.zero_grad()
        vectors = encoder(model, FIELDS)
        assert [tuple(v.shape) for v in vectors.values()] == [(3, vectors["query"].shape[1])] * 2
        (vectors["query"] @ vectors["positive"].T).diagonal().sum().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
        grads[-1]["vectors"] = torch.cat(list(vectors.values())).detach()
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], rtol=1e-4, atol=1e-5)
