"""Looking at memory from outside a turn: the key browser, foreign memory, why a fact was (not) used, search."""
