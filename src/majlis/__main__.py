from majlis.cli import main

main(prog_name="majlis")
