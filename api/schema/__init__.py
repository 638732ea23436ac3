"""The Strawberry schema, split by domain (customer, events, influence); see build.py."""
