"""``make bench``: every stage of Tocsin measured against raw Kafka on the same broker."""
