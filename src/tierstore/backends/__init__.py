"""Storage backends. Each cloud adapter lives in its own module and imports its SDK only when constructed."""
