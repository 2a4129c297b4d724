// Integration tests start services, join consumer groups and kill processes: minutes, not seconds.
jest.setTimeout(600_000);
