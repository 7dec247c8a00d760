DROP TABLE IF EXISTS canvas_layouts;
