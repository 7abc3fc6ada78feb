package redis_test

import (
	"github.com/bayeux-go/bayeux/server/auth"
	"github.com/bayeux-go/bayeux/server/redis"
)

// Logins and failed-login counts shared by every node on the engine's
// Redis (any go-redis UniversalClient works: a cluster client too).
func ExampleNewLoginStore() {
	eng, err := redis.New(redis.Options{URL: "redis://127.0.0.1:6379/0"})
	if err != nil {
		panic(err)
	}
	store := redis.NewLoginStore(eng.Client(), "", auth.LoginLimits{})
	guesses := redis.NewGuesses(eng.Client(), "", auth.GuessLimits{})
	logins, err := auth.NewLogins([][]byte{[]byte("a key of at least 16 bytes")}, store, 0)
	if err != nil {
		panic(err)
	}
	_ = &auth.Authenticator{Guesses: guesses}
	_ = logins
}
