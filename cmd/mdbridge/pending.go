package main

// Commands wired as their packages land.
var (
	cmdBench = notYet("bench")
	cmdChaos = notYet("chaos")
)
