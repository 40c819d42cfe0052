"""The guardian's memory (SPEC §5). Here: the store of attack embeddings and its similarity search.
The embedder, pattern detector and context builder come with the memory issue."""
