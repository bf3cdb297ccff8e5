"""The dataset library: parsing and validation, cleaning, PII masking, augmentation, knowledge-base
and feedback converters, preview. Pure functions over row payloads (see models.datasets.row_payload);
the services module writes versions."""
