"""What the data is: event models and limits, GTIN and Digital Link parsing, SQL migrations."""
