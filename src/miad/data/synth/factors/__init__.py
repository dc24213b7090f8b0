"""MIAD's three uncontrolled factors: viewpoint, background and surface (each a fraction in [0, 1] per image)."""
