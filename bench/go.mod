module github.com/sidehook/sidehook/bench

go 1.26.0

require (
	github.com/golang-jwt/jwt/v5 v5.3.1
	github.com/oklog/ulid/v2 v2.1.2
	github.com/sidehook/sidehook v0.0.0
)

// The load generator signs its requests with the product's own event and
// auth packages, from this checkout.
replace github.com/sidehook/sidehook => ../
