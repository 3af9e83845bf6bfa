"""repolsp."""
