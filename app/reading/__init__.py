"""Reading every number on a page: ink, pieces, lines, cuts scored by the network."""
