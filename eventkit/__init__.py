"""The shared library of every Minqing service: settings, logging, the event store,
the relay to Kafka and the consumer runtime. One place for each; never copied."""
