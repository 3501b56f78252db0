"""Pure geometry and analysis: no Flask, no database sessions, no settings."""
