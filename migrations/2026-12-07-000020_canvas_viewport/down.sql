DROP TABLE canvas_viewport;
