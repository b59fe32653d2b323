"""Where memory lives: sessions, facts and their index, episodes, turns and the audit log, each on its backend."""
