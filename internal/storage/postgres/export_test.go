package postgres

// ListenerPID exposes the backend PID of a Store's LISTEN connection so a
// test can kill it with pg_terminate_backend.
func ListenerPID(s *Store) uint32 { return s.lis.pid() }

// SchemaVersion is the number of migrations this binary knows.
func SchemaVersion() int {
	ms, err := loadMigrations()
	if err != nil {
		panic(err)
	}
	return len(ms)
}

// SharedDeliveries counts deliveries that committed together with others.
func SharedDeliveries(s *Store) int64 { return s.batch.shared.Load() }
