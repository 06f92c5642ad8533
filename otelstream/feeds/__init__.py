"""How facts arrive: one module per feed."""
