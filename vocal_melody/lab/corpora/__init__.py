"""Training corpora: readers (manifests, folders, MIR-1K, SSVD), the feature cache, the Debian music pool."""
