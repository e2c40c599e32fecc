"""Storage backends: the protocol (``base``), the providers by URL scheme (``registry``, one line each), the local
backends (``memory``, ``filesystem``), the shared cloud layer (``cloud``) and a package per cloud (``s3``, ``gcs``,
``azure``), each of which imports its backend, the cloud layer and its SDK only when a backend is built or named."""
