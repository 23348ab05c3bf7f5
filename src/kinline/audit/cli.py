import typer

app = typer.Typer()


@app.command()
def verify() -> None:
    pass
