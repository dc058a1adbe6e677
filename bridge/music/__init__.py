"""The music model: tokens, corpus, labels, transformer, training, sampling, evaluation."""
