module github.com/keepvs/keepvs

go 1.26.8
