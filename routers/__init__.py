"""Router families behind one interface, the routing decision rule, and the routing evaluation metrics."""
