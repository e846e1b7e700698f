module example.com/flusher

go 1.22
