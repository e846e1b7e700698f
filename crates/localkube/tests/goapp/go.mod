module example.com/localkube-testapp

go 1.27
