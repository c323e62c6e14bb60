package main

// Commands whose packages are being built: each is replaced by its own file
// (bench.go, chaos.go), which deletes its line here.
var ()
