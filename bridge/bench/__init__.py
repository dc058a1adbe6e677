"""Benchmarks (`scorebridge bench …`): they import the product and print its figures; nothing
in the product imports them."""
