"""The shared plumbing every chapter uses; it imports no chapter.

`checks` (argument checks), `data` (offline corpora and evaluation sets), `vocab`,
`tasks` (generated copy, reversal and date tasks), `keyed_vectors` (word vectors and
their evaluations), `train` (the training loop), `probe` (linear probes),
`activations` (counting the bytes autograd saves), `checkpoint` (safetensors files),
`results` (measured results the chapters quote),
`plot` (the book's figure style), `explorer` (interactive figures), `source`
(`show_source`) and `environment` (`check_environment`).
"""
