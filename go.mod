module github.com/pop3playground/pop3playground

go 1.26.0
