"""Table declarations (changelog-backed RocksDB) and the read-model helpers around them."""
